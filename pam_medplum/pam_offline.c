#include "pam_offline.h"

#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include <security/pam_ext.h>

#include "mp_backoff.h"
#include "mp_idmap.h"
#include "mp_login.h"
#include "mp_offline.h"
#include "mp_secret.h"
#include "mp_state.h"
#include "mp_verifier.h"
#include "pam_glue.h"

/* Medplum said yes: what the workstation keeps for offline logins and the
 * account phase (never the password or a token). */
static void remember_login(pam_handle_t *pamh, const struct mp_config *cfg, const mp_logger *log,
                           const char *user, const char *email, const char *password,
                           const struct mp_login_result *r, int64_t now)
{
    /* offline_ttl = 0: no verifier is kept at all, not even unused. */
    char *verifier = cfg->offline_ttl > 0 ? mp_verifier_make(password, log) : NULL;

    mp_backoff_success(cfg, log);
    if (mp_state_record_login(cfg->cache_dir, user, r->profile, verifier, r->mfa_used, now, log) !=
        0)
        pam_syslog(pamh, LOG_WARNING,
                   "user %s: cannot store the login state; offline "
                   "login and key-based access will need the network",
                   user);
    mp_secret_free(verifier);
    /* So the name resolves (NSS) before the next sync; never fails a login. */
    if (mp_idmap_record_login(cfg, user, email, r->profile, r->profile_display, log) != 0)
        pam_syslog(pamh, LOG_WARNING, "user %s: cannot record the account in the cache", user);
}

void pam_medplum_after_login(pam_handle_t *pamh, const struct mp_config *cfg, const mp_logger *log,
                             const char *user, const char *email, const char *password,
                             const struct mp_login_result *r, int64_t now)
{
    switch (r->status) {
    case MP_OK:
        remember_login(pamh, cfg, log, user, email, password, r, now);
        break;
    case MP_DENIED:
        if (mp_state_forget_verifier(cfg->cache_dir, user, log) != 0)
            pam_syslog(pamh, LOG_ERR, "user %s: cannot delete the offline verifier", user);
        /* A password attempt is a chance to learn a revocation: key logins,
         * su and sudo -u are then refused by the account phase at once. */
        if (r->membership_inactive &&
            mp_state_set_membership(cfg->cache_dir, user, MP_MEMBERSHIP_INACTIVE, now, log) != 0)
            pam_syslog(pamh, LOG_ERR, "user %s: cannot record the inactive membership", user);
        break;
    case MP_UNAVAILABLE:
        /* A 429 answers at once: nothing to save by skipping the network,
         * and a host-wide offline mode that anyone can trigger by failing
         * logins would let revoked members in on old verifiers. */
        if (r->retry_after == 0)
            mp_backoff_failure(cfg, now, r->retry_after, r->reason, log);
        break;
    case MP_ERROR:
        break;
    }
}

static void tell_offline(pam_handle_t *pamh, int flags, int64_t last_online)
{
    char when[64] = "";
    char msg[256];
    time_t t = (time_t)last_online;
    struct tm tm;

    if (localtime_r(&t, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
    snprintf(msg, sizeof(msg),
             "The Medplum server cannot be reached: you are logged in "
             "offline, with the password of your last online login (%s).",
             when);
    pam_glue_tell(pamh, flags, false, msg);
}

int pam_medplum_offline(pam_handle_t *pamh, int flags, const struct mp_config *cfg,
                        const mp_logger *log, const struct mp_offline_request *req, int64_t now,
                        const char *why)
{
    const char *user = req->user;
    struct mp_offline_result r;

    mp_offline_login(cfg, req, now, &r, log);
    switch (r.outcome) {
    case MP_OFFLINE_OK:
        pam_syslog(pamh, LOG_NOTICE, "user %s: accepted offline (%s): %s", user, why, r.reason);
        tell_offline(pamh, flags, r.last_online_login);
        return PAM_SUCCESS;
    case MP_OFFLINE_WRONG_PASSWORD:
        pam_syslog(pamh, LOG_NOTICE, "user %s: denied: %s (%s)", user, r.reason, why);
        pam_glue_tell(pamh, flags, true, MP_MSG_DENIED);
        return PAM_AUTH_ERR;
    case MP_OFFLINE_NOT_POSSIBLE:
        break;
    }
    pam_syslog(pamh, LOG_NOTICE, "user %s: %s", user, r.reason);
    return PAM_AUTHINFO_UNAVAIL;
}
