/*
 * Root-only per-user and per-host state in <cache_dir>/private/ (0700, files
 * 0600, written atomically): the membership state the account phase decides
 * from, the offline password verifier, offline failure counts, and the
 * network backoff.  Never a password, never a token.
 *
 * Time is always a parameter (`now`), so tests can move the clock.
 *
 * Shared by pam_medplum (logins, account phase, password change) and
 * medplumctl (sync writes membership state; status/cache list/purge read and
 * clear it).  The implementation may extend this API; these calls are what
 * other components rely on.
 */
#ifndef MP_STATE_H
#define MP_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "mp_log.h"

enum mp_membership_state {
    MP_MEMBERSHIP_UNKNOWN = 0, /* never learned, or the source could not tell */
    MP_MEMBERSHIP_ACTIVE,
    MP_MEMBERSHIP_INACTIVE, /* active: false */
    MP_MEMBERSHIP_ABSENT,   /* no membership in the project (left, deleted) */
};

struct mp_user_state {
    enum mp_membership_state membership;
    int64_t membership_checked_at; /* when the membership state was learned */
    int64_t last_online_login;     /* last successful online login, 0 = never */
    bool mfa_user;                 /* the last online login needed MFA */
    unsigned offline_failures;     /* offline failures in a row */
    bool has_verifier;             /* an offline verifier is stored */
};

/* Records the membership state learned by a sync or a live check. */
int mp_state_set_membership(const char *cache_dir, const char *user,
                            enum mp_membership_state state, int64_t now, const mp_logger *log);

/* Reads a user's state; a user without state yields a zeroed struct and 0. */
int mp_state_get_user(const char *cache_dir, const char *user, struct mp_user_state *out,
                      const mp_logger *log);

/* Removes one user's verifier and state / everyone's. */
int mp_state_purge_user(const char *cache_dir, const char *user, const mp_logger *log);
int mp_state_purge_all(const char *cache_dir, const mp_logger *log);

const char *mp_membership_state_name(enum mp_membership_state state);

#endif
