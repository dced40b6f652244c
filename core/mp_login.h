/*
 * The Medplum password login as a state machine (contract §10):
 *
 *   LOGIN  POST auth/login          -> code | mfaRequired | memberships | mfaEnrollRequired
 *   MFA    POST auth/mfa/verify     -> code | memberships
 *   PROFILE POST auth/profile       -> code
 *   TOKEN  POST oauth2/token (PKCE) -> tokens; project/profile checked
 *   LOGOUT POST oauth2/logout       -> no session left behind
 *
 * It talks to an mp_transport and an mp_conv only, so unit tests drive it
 * with recorded responses and no libpam.  /auth/login is sent at most once
 * per run: Medplum rate-limits logins per IP and every user of a
 * workstation shares that budget.
 */
#ifndef MP_LOGIN_H
#define MP_LOGIN_H

#include <stdbool.h>

#include "mp_config.h"
#include "mp_http.h"
#include "mp_log.h"
#include "mp_status.h"

/* The user-facing side (the PAM conversation in the module). */
struct mp_conv {
    /* Asks a question without echo; *answer is malloc'd (wiped by caller). */
    int (*ask_secret)(void *ctx, const char *prompt, char **answer);
    /* Shows a message; error selects PAM_ERROR_MSG over PAM_TEXT_INFO. */
    void (*tell)(void *ctx, bool error, const char *message);
    void *ctx;
};

struct mp_login_params {
    const char *username;         /* local name, for log lines */
    const char *email;            /* Medplum login email */
    const char *password;         /* sent exactly as typed */
    const char *expected_profile; /* "Practitioner/<id>" the name is bound to, or NULL */
    bool keep_session;            /* return the access token, skip logout (password change) */
};

struct mp_login_result {
    mp_status status;
    char reason[256];       /* the real reason, for syslog */
    char user_message[256]; /* what the user is told ("" = nothing special) */
    char profile[128];      /* "Practitioner/<id>" on success */
    char profile_display[128];
    char membership_id[64];
    bool mfa_used;
    bool membership_inactive; /* Medplum said so explicitly ("Profile not active") */
    long retry_after;         /* seconds, after a 429 */
    char *access_token;       /* only with keep_session; wipe with mp_login_result_clear */
};

/* The one message for every "no", so the answer never tells whether an
 * account exists or which check failed. */
#define MP_MSG_DENIED "Authentication failed."
#define MP_MSG_UNAVAILABLE "The Medplum server cannot be reached; please try again later."

mp_status mp_login_run(const struct mp_config *cfg, const struct mp_transport *transport,
                       const struct mp_conv *conv, const mp_logger *log,
                       const struct mp_login_params *params, struct mp_login_result *result);

/* POST oauth2/logout with the token (used after keep_session). */
void mp_login_logout(const struct mp_transport *transport, const mp_logger *log,
                     const char *access_token);

void mp_login_result_clear(struct mp_login_result *result);

#endif
