/*
 * The account-phase decision for a managed user who was not authenticated
 * by pam_medplum in this PAM transaction (SSH key, su from root, sudo -u,
 * cron), without libpam so the unit tests can drive it.
 *
 * In order:
 *  1. the membership state the workstation knows (medplumctl sync, the last
 *     online login, an earlier live check), if younger than
 *     membership_max_age: active allows, inactive/absent denies;
 *  2. else, with host credentials and outside a network backoff, a live
 *     check (mp_membership.h), whose answer is stored for the next time;
 *  3. else: a membership last known as revoked stays denied, whatever its
 *     age; otherwise account_unknown decides (default deny: fail closed).
 */
#ifndef MP_ACCT_H
#define MP_ACCT_H

#include <stdbool.h>
#include <stdint.h>

#include "mp_config.h"
#include "mp_http.h"
#include "mp_log.h"
#include "mp_state.h"

struct mp_acct_request {
    const char *user;
    const char *profile; /* "Practitioner/<id>" (cache, or last login), may be "" */
    int64_t now;
    const struct mp_transport *transport; /* NULL: no live check possible */
};

struct mp_acct_result {
    bool allow;
    enum mp_membership_state membership; /* what the decision was based on */
    char reason[256];                    /* for syslog */
    const char *user_message;            /* for the user on denial */
};

#define MP_MSG_MEMBERSHIP_ENDED                                                                    \
    "Your Medplum membership for this workstation's project has ended; access is denied."
#define MP_MSG_MEMBERSHIP_UNKNOWN                                                                  \
    "Your Medplum membership cannot be verified right now; access is denied. Log in with "         \
    "your password, or try again when the Medplum server is reachable."

void mp_acct_decide(const struct mp_config *cfg, const struct mp_acct_request *req,
                    struct mp_acct_result *result, const mp_logger *log);

#endif
