#include "pam_offline.h"

#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include <security/pam_ext.h>

#include "mp_login.h"
#include "mp_offline.h"
#include "pam_glue.h"

static void tell_offline(pam_handle_t *pamh, int flags, int64_t last_online)
{
    char when[64] = "";
    char msg[256];
    time_t t = (time_t)last_online;
    struct tm tm;

    if (localtime_r(&t, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
    snprintf(msg, sizeof(msg), "The Medplum server cannot be reached: you are logged in "
             "offline, with the password of your last online login (%s).", when);
    pam_glue_tell(pamh, flags, false, msg);
}

int pam_medplum_offline(pam_handle_t *pamh, int flags, const struct mp_config *cfg,
                        const mp_logger *log, const char *user, const char *password,
                        int64_t now, const char *why)
{
    struct mp_offline_result r;

    mp_offline_login(cfg, user, password, now, &r, log);
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
