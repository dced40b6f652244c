/*
 * Both sides of offline login (policy in core/mp_offline.h): what is kept
 * after each online answer, and the offline path of pam_sm_authenticate,
 * taken only when Medplum could not be asked or while the network backoff
 * is active.
 */
#ifndef PAM_MEDPLUM_OFFLINE_H
#define PAM_MEDPLUM_OFFLINE_H

#include <stdint.h>

#include <security/pam_modules.h>

#include "mp_config.h"
#include "mp_log.h"
#include "mp_login.h"
#include "mp_offline.h"

/*
 * PAM_SUCCESS (user told they are logged in offline), PAM_AUTH_ERR (wrong
 * password; user told "Authentication failed."), or PAM_AUTHINFO_UNAVAIL
 * when offline login is not possible: then nothing was said to the user and
 * the caller reports the outage.  `why` (the network failure) goes to syslog.
 */
/*
 * After any online login (authentication, or the old-password check of a
 * password change): the one place where the taxonomy meets offline login.
 * Medplum's yes stores the state and a fresh verifier (and the cache entry),
 * its explicit no deletes the verifier, "could not ask" starts or extends
 * the backoff, anything else changes nothing.
 */
void pam_medplum_after_login(pam_handle_t *pamh, const struct mp_config *cfg, const mp_logger *log,
                             const char *user, const char *email, const char *password,
                             const struct mp_login_result *r, int64_t now);

int pam_medplum_offline(pam_handle_t *pamh, int flags, const struct mp_config *cfg,
                        const mp_logger *log, const struct mp_offline_request *req, int64_t now,
                        const char *why);

#endif
