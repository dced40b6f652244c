/*
 * Offline login: the password checked against the verifier of the last
 * successful online login, used only when Medplum could not be asked
 * (mp_status_allows_offline, or an active backoff).  All of these must hold:
 *
 *   - offline_ttl > 0 and the last online login is younger than it;
 *   - a verifier is stored (an explicit "no" from Medplum deletes it);
 *   - the membership is not known to be inactive or absent;
 *   - the user did not need MFA online, unless offline_allow_mfa_users
 *     (the second factor cannot be checked offline);
 *   - fewer than offline_max_failures offline failures in a row (counted
 *     before the check, reset by an offline or online success).
 */
#ifndef MP_OFFLINE_H
#define MP_OFFLINE_H

#include <stdint.h>

#include "mp_config.h"
#include "mp_log.h"

enum mp_offline_outcome {
    MP_OFFLINE_OK = 0,
    MP_OFFLINE_WRONG_PASSWORD, /* a verifier was there and did not match */
    MP_OFFLINE_NOT_POSSIBLE,   /* one of the conditions above does not hold */
};

struct mp_offline_result {
    enum mp_offline_outcome outcome;
    int64_t last_online_login;
    char reason[200]; /* for syslog */
};

void mp_offline_login(const struct mp_config *cfg, const char *user, const char *password,
                      int64_t now, struct mp_offline_result *result, const mp_logger *log);

#endif
