/*
 * pam_sm_acct_mgmt: may this managed user get in now, by whatever path
 * authenticated them (password through us, SSH key, su from root, sudo -u,
 * cron)?
 *
 *   not ours (invalid name, /etc/passwd, not in the cache and never logged
 *   in here)                                   -> PAM_IGNORE, no network
 *   authenticated by this module just now      -> PAM_SUCCESS
 *   otherwise                                  -> mp_acct_decide (mp_acct.h):
 *                                                 PAM_SUCCESS or PAM_PERM_DENIED
 *
 * Anything that keeps us from knowing whether the name is ours (unusable
 * configuration or cache) denies: a revoked user must not get in by breaking
 * the cache.
 */
#include "pam_acct.h"

#include <string.h>
#include <syslog.h>

#include <security/pam_ext.h>

#include "mp_account.h"
#include "mp_acct.h"
#include "mp_config.h"
#include "mp_http.h"
#include "mp_state.h"
#include "pam_clock.h"
#include "pam_glue.h"

struct acct_ctx {
    pam_handle_t *pamh;
    int flags;
    const struct pam_medplum_args *args;
    mp_logger log;
    struct mp_config cfg;
    const char *user;
    struct mp_account account;
    struct mp_user_state state;
};

static int not_managed(struct acct_ctx *a)
{
    if (a->args->debug)
        pam_syslog(a->pamh, LOG_DEBUG, "account: ignoring user %s: not managed", a->user);
    return PAM_IGNORE;
}

/* PAM_SUCCESS when the user is managed; PAM_IGNORE when not ours. */
static int classify(struct acct_ctx *a)
{
    if (mp_account_resolve(&a->cfg, a->user, &a->account, &a->log) != 0) {
        pam_syslog(a->pamh, LOG_ERR, "user %s: account denied: %s", a->user, a->account.why);
        return PAM_PERM_DENIED;
    }
    if (a->account.kind != MP_ACCOUNT_MANAGED)
        return not_managed(a);
    /* Unreadable state is ours and unknown (decided closed), never a way
     * out of a recorded revocation. */
    if (mp_state_get_user(a->cfg.cache_dir, a->user, &a->state, &a->log) != 0) {
        memset(&a->state, 0, sizeof(a->state));
        return PAM_SUCCESS;
    }
    /* email_domain alone does not make a name ours here: only the cache, an
     * earlier successful login or a recorded membership state does. */
    if (!a->account.in_cache && a->state.last_online_login == 0 &&
        a->state.membership == MP_MEMBERSHIP_UNKNOWN)
        return not_managed(a);
    return PAM_SUCCESS;
}

static int decide(struct acct_ctx *a)
{
    struct mp_acct_request req = {0};
    struct mp_acct_result res;
    struct mp_transport transport;
    mp_http *http = mp_http_open(&a->cfg, &a->log);

    req.user = a->user;
    req.profile = a->account.profile[0] ? a->account.profile : a->state.profile;
    req.now = pam_medplum_now();
    if (http != NULL) {
        transport = mp_http_transport(http);
        req.transport = &transport;
    }
    mp_acct_decide(&a->cfg, &req, &res, &a->log);
    mp_http_close(http);
    if (res.allow) {
        pam_syslog(a->pamh, LOG_NOTICE, "user %s: account allowed: %s", a->user, res.reason);
        return PAM_SUCCESS;
    }
    pam_syslog(a->pamh, LOG_NOTICE, "user %s: account denied: %s", a->user, res.reason);
    pam_glue_tell(a->pamh, a->flags, true, res.user_message);
    return PAM_PERM_DENIED;
}

int pam_medplum_acct_mgmt(pam_handle_t *pamh, int flags, const struct pam_medplum_args *args)
{
    struct acct_ctx a = {0};
    char why[128];
    int ret = PAM_PERM_DENIED;

    a.pamh = pamh;
    a.flags = flags;
    a.args = args;
    a.log = pam_glue_logger(pamh, args->debug);
    if (pam_get_user(pamh, &a.user, NULL) != PAM_SUCCESS || a.user == NULL || a.user[0] == '\0')
        return PAM_USER_UNKNOWN;
    /* Local accounts keep working whatever Medplum or our files do. */
    if (mp_account_is_foreign(a.user, why, sizeof(why)))
        return PAM_IGNORE;
    if (pam_glue_authenticated(pamh, a.user))
        return PAM_SUCCESS;
    if (pam_glue_load_config(pamh, flags, args->config, &a.cfg, &a.log) != PAM_SUCCESS) {
        pam_syslog(pamh, LOG_ERR, "user %s: account denied: no usable configuration", a.user);
        goto out;
    }
    ret = classify(&a);
    if (ret == PAM_SUCCESS)
        ret = decide(&a);
out:
    mp_config_free(&a.cfg);
    return ret;
}
