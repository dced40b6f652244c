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
 *     before the check, reset by an offline or online success);
 *   - when the name is bound to a Practitioner (cache), the verifier was made
 *     by that Practitioner's login: a name re-bound to somebody else never
 *     opens with the previous holder's password;
 *   - when Medplum answered 429 (which anyone can cause, by failing logins
 *     from this host), the membership is known active and younger than
 *     membership_max_age: a rate limit must not reopen a revoked account.
 */
#ifndef MP_OFFLINE_H
#define MP_OFFLINE_H

#include <stdbool.h>
#include <stdint.h>

#include "mp_config.h"
#include "mp_log.h"

/* Zero is "not possible", so a result that no branch filled in never
 * counts as a success. */
enum mp_offline_outcome {
    MP_OFFLINE_NOT_POSSIBLE = 0, /* one of the conditions above does not hold */
    MP_OFFLINE_WRONG_PASSWORD,   /* a verifier was there and did not match */
    MP_OFFLINE_OK,
};

struct mp_offline_request {
    const char *user;
    const char *password;
    const char *expected_profile; /* "Practitioner/<id>" the name is bound to, or NULL */
    bool rate_limited;            /* the fallback is due to a 429 */
};

struct mp_offline_result {
    enum mp_offline_outcome outcome;
    int64_t last_online_login;
    char reason[200]; /* for syslog */
};

void mp_offline_login(const struct mp_config *cfg, const struct mp_offline_request *req,
                      int64_t now, struct mp_offline_result *result, const mp_logger *log);

#endif
