/*
 * POST auth/changepassword {"oldPassword", "newPassword"} with the access
 * token of a login made for it (mp_login_params.keep_session), and what the
 * answer means for the user.
 *
 * Medplum's own rules come back as Medplum's words (too short, "Password
 * found in breach database", "Incorrect password").  A 500 is special: a
 * real 5.0.10 server answers 500 to every otherwise valid change when it
 * cannot reach Have I Been Pwned (shared/medplum-real-5.0.10.md, Top 8),
 * which is normal on air-gapped sites, so the user is told exactly that.
 */
#ifndef MP_CHPASS_H
#define MP_CHPASS_H

#include "mp_http.h"
#include "mp_log.h"
#include "mp_status.h"

struct mp_chpass_result {
    mp_status status;       /* MP_OK, MP_DENIED (Medplum refused), MP_UNAVAILABLE, MP_ERROR */
    long http_status;       /* 0 without an answer */
    char reason[256];       /* for syslog */
    char user_message[512]; /* for the user ("" on success) */
};

#define MP_MSG_HIBP_UNREACHABLE                                                                    \
    "Your password was not changed: the Medplum server failed (HTTP 500) while checking "          \
    "the new password. Medplum checks every new password against the Have I Been Pwned "           \
    "breach list and fails when it cannot reach that service, which is normal on sites "           \
    "without internet access. Ask your administrator to change it in Medplum, or try "             \
    "again once the server can reach api.pwnedpasswords.com."

mp_status mp_chpass_run(const struct mp_transport *transport, const char *access_token,
                        const char *old_password, const char *new_password,
                        struct mp_chpass_result *result, const mp_logger *log);

#endif
