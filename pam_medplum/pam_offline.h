/*
 * The offline path of pam_sm_authenticate (policy in core/mp_offline.h):
 * taken only when Medplum could not be asked, or while the network backoff
 * is active.
 */
#ifndef PAM_MEDPLUM_OFFLINE_H
#define PAM_MEDPLUM_OFFLINE_H

#include <stdint.h>

#include <security/pam_modules.h>

#include "mp_config.h"
#include "mp_log.h"

/*
 * PAM_SUCCESS (user told they are logged in offline), PAM_AUTH_ERR (wrong
 * password; user told "Authentication failed."), or PAM_AUTHINFO_UNAVAIL
 * when offline login is not possible: then nothing was said to the user and
 * the caller reports the outage.  `why` (the network failure) goes to syslog.
 */
int pam_medplum_offline(pam_handle_t *pamh, int flags, const struct mp_config *cfg,
                        const mp_logger *log, const char *user, const char *password,
                        int64_t now, const char *why);

#endif
