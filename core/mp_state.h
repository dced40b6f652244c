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
 *
 * Files (format in mp_state.c): private/user-<name> per user (state and
 * verifier together, so one rename updates both), private/backoff for the
 * host, private/state.lock serialising read-modify-write updates.  Every
 * function returns 0 on success and -1 on failure (logged); readers never
 * create anything.
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
    /* Extensions (appended; older users of the struct are unaffected): */
    char profile[128]; /* "Practitioner/<id>" of the last online login, or "" */
};

/* Records the membership state learned by a sync or a live check. */
int mp_state_set_membership(const char *cache_dir, const char *user, enum mp_membership_state state,
                            int64_t now, const mp_logger *log);

/* Reads a user's state; a user without state yields a zeroed struct and 0. */
int mp_state_get_user(const char *cache_dir, const char *user, struct mp_user_state *out,
                      const mp_logger *log);

/* Removes one user's verifier and state / everyone's. */
int mp_state_purge_user(const char *cache_dir, const char *user, const mp_logger *log);
int mp_state_purge_all(const char *cache_dir, const mp_logger *log);

const char *mp_membership_state_name(enum mp_membership_state state);

/* ---- login bookkeeping (pam_medplum) ------------------------------------ */

/*
 * After a successful online login: membership active as of now, last online
 * login now, offline failures reset, MFA flag and profile stored, and the
 * verifier replaced by `verifier` (a crypt(3) string; NULL removes it).
 */
int mp_state_record_login(const char *cache_dir, const char *user, const char *profile,
                          const char *verifier, bool mfa_user, int64_t now, const mp_logger *log);

/* Replaces only the verifier (after a password change). */
int mp_state_set_verifier(const char *cache_dir, const char *user, const char *verifier,
                          const mp_logger *log);

/* Medplum said no: the verifier goes, so offline login is impossible until
 * the next online success.  No state at all is fine. */
int mp_state_forget_verifier(const char *cache_dir, const char *user, const mp_logger *log);

/* The stored verifier (malloc'd, free with mp_secret_free) or NULL. */
int mp_state_get_verifier(const char *cache_dir, const char *user, char **verifier,
                          const mp_logger *log);

/*
 * Offline attempts are counted before the password is checked, under the
 * state lock, so parallel guesses cannot overtake the counter.  Returns 0
 * when the attempt was counted (proceed), 1 when max_failures attempts in a
 * row already failed (refuse), -1 on error (refuse).
 */
int mp_state_offline_begin(const char *cache_dir, const char *user, unsigned max_failures,
                           const mp_logger *log);
/* The offline attempt succeeded: the counter goes back to 0. */
int mp_state_offline_succeeded(const char *cache_dir, const char *user, const mp_logger *log);

/* ---- network backoff (host-wide; policy in mp_backoff.h) ---------------- */

struct mp_backoff_state {
    unsigned failures;     /* network failures in a row, 0 = no backoff */
    int64_t first_failure; /* start of this outage */
    int64_t last_failure;
    int64_t until;    /* no network before this time */
    char reason[160]; /* last failure, for medplumctl status */
};

/* A host without a backoff file yields a zeroed struct and 0. */
int mp_state_get_backoff(const char *cache_dir, struct mp_backoff_state *out, const mp_logger *log);
int mp_state_set_backoff(const char *cache_dir, const struct mp_backoff_state *st,
                         const mp_logger *log);
int mp_state_clear_backoff(const char *cache_dir, const mp_logger *log);

/* Read-modify-write under the state lock: `update` gets the current state
 * (zeroed if none) and changes it; a result with failures == 0 removes the
 * file. */
int mp_state_update_backoff(const char *cache_dir,
                            void (*update)(struct mp_backoff_state *st, void *ctx), void *ctx,
                            const mp_logger *log);

#endif
