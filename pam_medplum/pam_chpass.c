/*
 * pam_sm_chauthtok: `passwd` for a Medplum user changes the Medplum password.
 *
 *   PAM_PRELIM_CHECK   the old password logs in (the full login flow, MFA
 *                      included; keep_session returns the access token,
 *                      which stays in memory only, in pam_set_data with a
 *                      cleanup that wipes it)
 *   PAM_UPDATE_AUTHTOK POST auth/changepassword with that token, then
 *                      logout; on success the offline verifier is refreshed
 *
 * Users this module does not manage get PAM_IGNORE before anything is
 * prompted or any item is touched, so pam_unix (use_authtok, try_first_pass)
 * after us behaves as if we were not there.  Stacked use: try_first_pass /
 * use_first_pass take the old password from PAM_OLDAUTHTOK; use_authtok (or
 * use_first_pass) takes the new one from PAM_AUTHTOK (e.g. from pam_pwquality).
 */
#include "pam_chpass.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <security/pam_ext.h>

#include "mp_account.h"
#include "mp_backoff.h"
#include "mp_chpass.h"
#include "mp_http.h"
#include "mp_login.h"
#include "mp_secret.h"
#include "mp_state.h"
#include "mp_validate.h"
#include "mp_verifier.h"
#include "pam_clock.h"
#include "pam_glue.h"
#include "pam_offline.h"

#define DATA_TOKEN "pam_medplum_chpass_token"

struct chpass_ctx {
    pam_handle_t *pamh;
    int flags;
    const struct pam_medplum_args *args;
    mp_logger log;
    struct mp_config cfg;
    const char *user;
    struct mp_account account;
    mp_http *http;
    struct mp_transport transport;
};

/* PAM_SUCCESS for a managed user, PAM_IGNORE otherwise (nothing touched). */
static int classify(struct chpass_ctx *c)
{
    char why[128];

    if (pam_get_user(c->pamh, &c->user, NULL) != PAM_SUCCESS || c->user == NULL ||
        c->user[0] == '\0' || mp_account_is_foreign(c->user, why, sizeof(why)))
        return PAM_IGNORE;
    if (pam_glue_load_config(c->pamh, c->flags, c->args->config, &c->cfg, &c->log) != PAM_SUCCESS)
        return PAM_AUTHTOK_ERR;
    if (mp_account_resolve(&c->cfg, c->user, &c->account, &c->log) != 0) {
        pam_syslog(c->pamh, LOG_ERR, "user %s: password change refused: %s", c->user,
                   c->account.why);
        return PAM_AUTHTOK_ERR;
    }
    return c->account.kind == MP_ACCOUNT_MANAGED ? PAM_SUCCESS : PAM_IGNORE;
}

static int open_http(struct chpass_ctx *c)
{
    c->http = mp_http_open(&c->cfg, &c->log);
    if (c->http == NULL)
        return PAM_BUF_ERR;
    c->transport = mp_http_transport(c->http);
    return PAM_SUCCESS;
}

/* Prompts for a secret and stores it in item (for us and later modules). */
static int prompt_item(struct chpass_ctx *c, int item, const char *prompt, const char **out)
{
    const void *value = NULL;
    char *typed = NULL;
    int rc = pam_prompt(c->pamh, PAM_PROMPT_ECHO_OFF, &typed, "%s", prompt);

    if (rc != PAM_SUCCESS || typed == NULL) {
        mp_secret_free(typed);
        return rc == PAM_SUCCESS ? PAM_CONV_ERR : rc;
    }
    rc = pam_set_item(c->pamh, item, typed);
    mp_secret_free(typed);
    if (rc == PAM_SUCCESS)
        rc = pam_get_item(c->pamh, item, &value);
    *out = value;
    return rc == PAM_SUCCESS && value != NULL ? PAM_SUCCESS : PAM_AUTHTOK_ERR;
}

static int get_old_password(struct chpass_ctx *c, const char **old)
{
    const void *item = NULL;

    *old = NULL;
    if (c->args->try_first_pass || c->args->use_first_pass) {
        if (pam_get_item(c->pamh, PAM_OLDAUTHTOK, &item) == PAM_SUCCESS && item != NULL) {
            *old = item;
            return PAM_SUCCESS;
        }
        if (c->args->use_first_pass)
            return PAM_AUTHTOK_RECOVERY_ERR;
    }
    return prompt_item(c, PAM_OLDAUTHTOK, "Current Medplum password: ", old);
}

static int get_new_password(struct chpass_ctx *c, const char **new_password)
{
    const void *item = NULL;
    char *again = NULL;
    int rc;

    *new_password = NULL;
    if (c->args->use_authtok || c->args->use_first_pass || c->args->try_first_pass) {
        if (pam_get_item(c->pamh, PAM_AUTHTOK, &item) == PAM_SUCCESS && item != NULL) {
            *new_password = item;
            return PAM_SUCCESS;
        }
        if (c->args->use_authtok || c->args->use_first_pass)
            return PAM_AUTHTOK_ERR;
    }
    rc = pam_prompt(c->pamh, PAM_PROMPT_ECHO_OFF, &again, "%s", "New Medplum password: ");
    if (rc != PAM_SUCCESS || again == NULL) {
        mp_secret_free(again);
        return PAM_AUTHTOK_ERR;
    }
    rc = pam_set_item(c->pamh, PAM_AUTHTOK, again);
    mp_secret_free(again);
    again = NULL;
    if (rc != PAM_SUCCESS || pam_get_item(c->pamh, PAM_AUTHTOK, &item) != PAM_SUCCESS ||
        item == NULL)
        return PAM_AUTHTOK_ERR;
    rc = pam_prompt(c->pamh, PAM_PROMPT_ECHO_OFF, &again, "%s", "Retype new Medplum password: ");
    if (rc != PAM_SUCCESS || again == NULL || strcmp(again, item) != 0) {
        pam_glue_tell(c->pamh, c->flags, true, "Sorry, passwords do not match.");
        mp_secret_free(again);
        pam_set_item(c->pamh, PAM_AUTHTOK, NULL);
        return PAM_AUTHTOK_ERR;
    }
    mp_secret_free(again);
    *new_password = item;
    return PAM_SUCCESS;
}

static void wipe_token(pam_handle_t *pamh, void *data, int error_status)
{
    (void)pamh;
    (void)error_status;
    mp_secret_free(data);
}

/* Maps the old-password login to PAM and tells the user. */
static int prelim_report(struct chpass_ctx *c, const struct mp_login_result *r)
{
    switch (r->status) {
    case MP_OK:
        return PAM_SUCCESS;
    case MP_DENIED:
        pam_syslog(c->pamh, LOG_NOTICE, "user %s: password change refused: %s", c->user, r->reason);
        pam_glue_tell(c->pamh, c->flags, true,
                      r->user_message[0] ? r->user_message : MP_MSG_DENIED);
        return PAM_AUTH_ERR;
    case MP_UNAVAILABLE:
        pam_syslog(c->pamh, LOG_ERR, "user %s: password change impossible: %s", c->user, r->reason);
        pam_glue_tell(c->pamh, c->flags, true,
                      "The Medplum server cannot be reached; your "
                      "password cannot be changed now. Please try again later.");
        return PAM_TRY_AGAIN;
    case MP_ERROR:
        break;
    }
    pam_syslog(c->pamh, LOG_ERR, "user %s: password change impossible: %s", c->user, r->reason);
    pam_glue_tell(c->pamh, c->flags, true,
                  "Medplum password change failed; contact your "
                  "administrator if this persists.");
    return PAM_AUTHTOK_ERR;
}

static int keep_token(struct chpass_ctx *c, struct mp_login_result *r)
{
    char *copy = r->access_token;

    r->access_token = NULL; /* ownership moves to libpam's data */
    if (copy == NULL || pam_set_data(c->pamh, DATA_TOKEN, copy, wipe_token) != PAM_SUCCESS) {
        mp_secret_free(copy);
        return PAM_BUF_ERR;
    }
    return PAM_SUCCESS;
}

static int prelim(struct chpass_ctx *c)
{
    struct pam_glue glue = {c->pamh, c->flags};
    struct mp_conv conv = pam_glue_conv(&glue);
    struct mp_login_params params = {0};
    struct mp_login_result result;
    int64_t now = pam_medplum_now();
    const char *old = NULL;
    long remaining;
    int ret;

    if (mp_backoff_active(&c->cfg, now, &remaining, &c->log)) {
        pam_syslog(c->pamh, LOG_NOTICE,
                   "user %s: password change impossible: Medplum "
                   "unreachable recently (%ld s left)",
                   c->user, remaining);
        pam_glue_tell(c->pamh, c->flags, true,
                      "The Medplum server cannot be reached; your "
                      "password cannot be changed now. Please try again later.");
        return PAM_TRY_AGAIN;
    }
    pam_glue_tell(c->pamh, c->flags, false, "Changing the Medplum password.");
    ret = get_old_password(c, &old);
    if (ret != PAM_SUCCESS)
        return ret;
    if (!mp_is_acceptable_password(old)) {
        pam_glue_tell(c->pamh, c->flags, true, MP_MSG_DENIED);
        return PAM_AUTH_ERR;
    }
    if ((ret = open_http(c)) != PAM_SUCCESS)
        return ret;
    params.username = c->user;
    params.email = c->account.email;
    params.password = old;
    params.expected_profile = c->account.profile[0] ? c->account.profile : NULL;
    params.keep_session = true; /* same flow, same MFA: only the token is kept */
    mp_login_run(&c->cfg, &c->transport, &conv, &c->log, &params, &result);
    pam_medplum_after_login(c->pamh, &c->cfg, &c->log, c->user, c->account.email, old, &result,
                            now);
    ret = prelim_report(c, &result);
    if (ret == PAM_SUCCESS)
        ret = keep_token(c, &result);
    mp_login_result_clear(&result);
    return ret;
}

/* After Medplum accepted the new password, offline login must use it. */
static void refresh_verifier(struct chpass_ctx *c, const char *new_password)
{
    char *verifier;

    if (c->cfg.offline_ttl == 0)
        return;
    verifier = mp_verifier_make(new_password, &c->log);
    if (verifier == NULL ||
        mp_state_set_verifier(c->cfg.cache_dir, c->user, verifier, &c->log) != 0) {
        pam_syslog(c->pamh, LOG_WARNING,
                   "user %s: cannot refresh the offline verifier; "
                   "removing it",
                   c->user);
        mp_state_forget_verifier(c->cfg.cache_dir, c->user, &c->log);
    }
    mp_secret_free(verifier);
}

static int update(struct chpass_ctx *c)
{
    struct mp_chpass_result r;
    const void *token = NULL, *old = NULL;
    const char *new_password = NULL;
    int ret;

    if (pam_get_data(c->pamh, DATA_TOKEN, &token) != PAM_SUCCESS || token == NULL ||
        pam_get_item(c->pamh, PAM_OLDAUTHTOK, &old) != PAM_SUCCESS || old == NULL) {
        pam_syslog(c->pamh, LOG_ERR, "user %s: no Medplum session from the preliminary check",
                   c->user);
        return PAM_AUTHTOK_ERR;
    }
    ret = get_new_password(c, &new_password);
    if (ret != PAM_SUCCESS)
        goto out;
    if (!mp_is_acceptable_password(new_password)) {
        pam_glue_tell(c->pamh, c->flags, true,
                      "The new password is empty, too long or contains control characters.");
        ret = PAM_AUTHTOK_ERR;
        goto out;
    }
    if ((ret = open_http(c)) != PAM_SUCCESS)
        goto out;
    mp_chpass_run(&c->transport, token, old, new_password, &r, &c->log);
    if (r.status == MP_OK) {
        pam_syslog(c->pamh, LOG_NOTICE, "user %s: %s", c->user, r.reason);
        refresh_verifier(c, new_password);
        pam_glue_tell(c->pamh, c->flags, false, "Your Medplum password has been changed.");
    } else {
        pam_syslog(c->pamh, LOG_NOTICE, "user %s: password change failed: %s", c->user, r.reason);
        pam_glue_tell(c->pamh, c->flags, true, r.user_message);
        if (r.status == MP_UNAVAILABLE)
            mp_backoff_failure(&c->cfg, pam_medplum_now(), 0, r.reason, &c->log);
    }
    ret = r.status == MP_OK            ? PAM_SUCCESS
          : r.status == MP_UNAVAILABLE ? PAM_TRY_AGAIN
                                       : PAM_AUTHTOK_ERR;
    /* No session left behind; after a network failure the logout would only
     * wait for another timeout (the token then expires on its own). */
    if (r.status != MP_UNAVAILABLE)
        mp_login_logout(&c->transport, &c->log, token);
out:
    pam_set_data(c->pamh, DATA_TOKEN, NULL, NULL); /* runs wipe_token on the old value */
    return ret;
}

int pam_medplum_chauthtok(pam_handle_t *pamh, int flags, const struct pam_medplum_args *args)
{
    struct chpass_ctx c = {0};
    int ret;

    c.pamh = pamh;
    c.flags = flags;
    c.args = args;
    c.log = pam_glue_logger(pamh, args->debug);
    ret = classify(&c);
    if (ret != PAM_SUCCESS)
        goto out;
    if (flags & PAM_PRELIM_CHECK)
        ret = prelim(&c);
    else if (flags & PAM_UPDATE_AUTHTOK)
        ret = update(&c);
    else
        ret = PAM_SERVICE_ERR;
out:
    mp_http_close(c.http);
    mp_config_free(&c.cfg);
    return ret;
}
