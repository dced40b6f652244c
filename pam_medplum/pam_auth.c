#include "pam_auth.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <security/pam_ext.h>

#include "mp_account.h"
#include "mp_backoff.h"
#include "mp_config.h"
#include "mp_http.h"
#include "mp_json.h"
#include "mp_login.h"
#include "mp_validate.h"
#include "pam_clock.h"
#include "pam_glue.h"
#include "pam_offline.h"

/* Everything one authentication needs, released in one place. */
struct auth_ctx {
    pam_handle_t *pamh;
    int flags;
    const struct pam_medplum_args *args;
    mp_logger log;
    struct mp_config cfg;
    bool cfg_loaded;
    const char *user;
    struct mp_account account;
};

static int load_config(struct auth_ctx *a)
{
    int rc = pam_glue_load_config(a->pamh, a->flags, a->args->config, &a->cfg, &a->log);

    a->cfg_loaded = true; /* mp_config_free is safe on a partly initialised cfg */
    return rc;
}

/* With debug: why a user is left to other modules (the name is shown
 * sanitised: an invalid one may hold control characters). */
static void log_ignored(struct auth_ctx *a, const char *why)
{
    char shown[64];

    if (!a->args->debug)
        return;
    mp_sanitize_for_log(a->user, shown, sizeof(shown));
    pam_syslog(a->pamh, LOG_DEBUG, "ignoring user %s: %s", shown, why);
}

/* PAM_SUCCESS when the user is ours; PAM_USER_UNKNOWN lets the stack fall
 * through to pam_unix without any network request. */
static int classify_user(struct auth_ctx *a)
{
    char why[128];
    int rc = pam_get_user(a->pamh, &a->user, NULL);

    if (rc != PAM_SUCCESS)
        return rc;
    if (a->user == NULL || a->user[0] == '\0')
        return PAM_USER_UNKNOWN;
    if (mp_account_is_foreign(a->user, why, sizeof(why))) {
        log_ignored(a, why);
        return PAM_USER_UNKNOWN;
    }
    rc = load_config(a);
    if (rc != PAM_SUCCESS)
        return rc;
    if (mp_account_resolve(&a->cfg, a->user, &a->account, &a->log) != 0) {
        pam_syslog(a->pamh, LOG_ERR, "user %s: denied: %s", a->user, a->account.why);
        return PAM_AUTHINFO_UNAVAIL;
    }
    if (a->account.kind != MP_ACCOUNT_MANAGED) {
        log_ignored(a, a->account.why);
        return PAM_USER_UNKNOWN;
    }
    return PAM_SUCCESS;
}

static int check_password_locally(struct auth_ctx *a, const char *password)
{
    if (password == NULL || password[0] == '\0') {
        pam_syslog(a->pamh, LOG_NOTICE, "user %s: denied: empty password (not sent)", a->user);
        return PAM_AUTH_ERR;
    }
    if (!mp_is_acceptable_password(password)) {
        pam_syslog(a->pamh, LOG_NOTICE,
                   "user %s: denied: password longer than %d bytes or with control characters "
                   "(not sent)",
                   a->user, MP_PASSWORD_MAX);
        return PAM_AUTH_ERR;
    }
    return PAM_SUCCESS;
}

static void tell_unavailable(struct auth_ctx *a, const char *reason, long retry_after)
{
    char msg[256];

    pam_syslog(a->pamh, LOG_ERR, "user %s: cannot authenticate: %s", a->user, reason);
    if (retry_after > 0) {
        snprintf(msg, sizeof(msg),
                 "Too many logins from this workstation; Medplum asks to "
                 "wait %ld seconds before trying again.",
                 retry_after);
        pam_glue_tell(a->pamh, a->flags, true, msg);
    } else {
        pam_glue_tell(a->pamh, a->flags, true, MP_MSG_UNAVAILABLE);
    }
}

/* Maps the taxonomy to PAM, logs the one decision line, tells the user. */
static int report(struct auth_ctx *a, const struct mp_login_result *r)
{
    switch (r->status) {
    case MP_OK:
        pam_syslog(a->pamh, LOG_NOTICE, "user %s: accepted as %s (%s)%s", a->user, a->account.email,
                   r->profile, r->mfa_used ? " with MFA" : "");
        return PAM_SUCCESS;
    case MP_DENIED:
        pam_syslog(a->pamh, LOG_NOTICE, "user %s: denied: %s", a->user, r->reason);
        pam_glue_tell(a->pamh, a->flags, true,
                      r->user_message[0] ? r->user_message : MP_MSG_DENIED);
        return PAM_AUTH_ERR;
    case MP_UNAVAILABLE:
        tell_unavailable(a, r->reason, r->retry_after);
        return PAM_AUTHINFO_UNAVAIL;
    case MP_ERROR:
        break;
    }
    pam_syslog(a->pamh, LOG_ERR, "user %s: denied: %s", a->user, r->reason);
    pam_glue_tell(a->pamh, a->flags, true,
                  r->user_message[0] ? r->user_message
                                     : "Medplum login failed; contact your "
                                       "administrator if this persists.");
    return PAM_AUTHINFO_UNAVAIL;
}

static int offline_or_unavailable(struct auth_ctx *a, const char *password, int64_t now,
                                  const char *why, long retry_after)
{
    struct mp_offline_request req = {
        a->user, password, a->account.profile[0] ? a->account.profile : NULL, retry_after > 0};
    int ret = pam_medplum_offline(a->pamh, a->flags, &a->cfg, &a->log, &req, now, why);

    if (ret == PAM_AUTHINFO_UNAVAIL)
        tell_unavailable(a, why, retry_after);
    return ret;
}

static int online_login(struct auth_ctx *a, const char *password, int64_t now)
{
    struct pam_glue glue = {a->pamh, a->flags};
    struct mp_conv conv = pam_glue_conv(&glue);
    struct mp_login_params params = {0};
    struct mp_login_result result;
    struct mp_transport transport;
    mp_http *http = mp_http_open(&a->cfg, &a->log);
    int ret = PAM_AUTHINFO_UNAVAIL;

    if (http == NULL) {
        /* mp_http_open logged why (out of memory, or an unsafe environment). */
        pam_syslog(a->pamh, LOG_ERR, "user %s: denied: cannot set up the HTTP client", a->user);
        pam_glue_tell(a->pamh, a->flags, true,
                      "Medplum login failed; contact your administrator if this persists.");
        return PAM_AUTHINFO_UNAVAIL;
    }
    transport = mp_http_transport(http);
    params.username = a->user;
    params.email = a->account.email;
    params.password = password;
    params.expected_profile = a->account.profile[0] ? a->account.profile : NULL;
    mp_login_run(&a->cfg, &transport, &conv, &a->log, &params, &result);
    pam_medplum_after_login(a->pamh, &a->cfg, &a->log, a->user, a->account.email, password, &result,
                            now);
    if (mp_status_allows_offline(result.status))
        ret = offline_or_unavailable(a, password, now, result.reason, result.retry_after);
    else
        ret = report(a, &result);
    mp_login_result_clear(&result);
    mp_http_close(http);
    return ret;
}

static int run_login(struct auth_ctx *a, const char *password)
{
    int64_t now = pam_medplum_now();
    char why[128];
    long remaining;
    int ret;

    /* During an outage only the first login pays for the timeout. */
    if (mp_backoff_active(&a->cfg, now, &remaining, &a->log)) {
        snprintf(why, sizeof(why), "Medplum unreachable recently, network skipped for %ld s",
                 remaining);
        ret = offline_or_unavailable(a, password, now, why, 0);
    } else {
        ret = online_login(a, password, now);
    }
    if (ret == PAM_SUCCESS && pam_glue_mark_authenticated(a->pamh, a->user) != PAM_SUCCESS)
        ret = PAM_BUF_ERR;
    return ret;
}

int pam_medplum_authenticate(pam_handle_t *pamh, int flags, const struct pam_medplum_args *args)
{
    struct auth_ctx a = {0};
    const char *password = NULL;
    int ret;

    a.pamh = pamh;
    a.flags = flags;
    a.args = args;
    a.log = pam_glue_logger(pamh, args->debug);

    ret = classify_user(&a);
    if (ret != PAM_SUCCESS)
        goto out;
    ret = pam_glue_get_password(pamh, args->use_first_pass, args->try_first_pass, &password);
    if (ret != PAM_SUCCESS) {
        pam_syslog(pamh, LOG_NOTICE, "user %s: no password obtained (%s)", a.user,
                   pam_strerror(pamh, ret));
        goto out;
    }
    ret = check_password_locally(&a, password);
    if (ret != PAM_SUCCESS)
        goto out;
    ret = run_login(&a, password);
out:
    if (a.cfg_loaded)
        mp_config_free(&a.cfg);
    return ret;
}
