/*
 * The account cache shared by medplumctl sync (writer), pam_medplum (reader,
 * and writer of the logged-in user's own entry) and nss_medplum (reader).
 *
 * Layout of cache_dir (root:root 0755):
 *   accounts.db   world-readable (0644): passwd/group entries plus, per user,
 *                 the Medplum email and Practitioner id; no secrets.
 *   .lock         writers serialise on it (flock); readers never take it.
 *   private/      root-only (0700, files 0600): verifiers and state (mp_state).
 *
 * This header is the writer/owner API (may allocate, logs through mp_logger).
 * The NSS module uses the libc-only reader in mp_cache_reader.h.
 */
#ifndef MP_CACHE_H
#define MP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp_log.h"

#define MP_CACHE_FILE "accounts.db"
#define MP_CACHE_LOCK ".lock"
#define MP_CACHE_PRIVATE "private"

struct mp_cache_user {
    char *name; /* local user name (validated POSIX name) */
    uint32_t uid;
    uint32_t gid;
    char *gecos;
    char *home;
    char *shell;
    char *email;         /* Medplum login email */
    char *profile;       /* "Practitioner/<id>" */
    char *membership_id; /* ProjectMembership id, or NULL if unknown */
    bool admin;          /* membership admin flag */
};

struct mp_cache_group {
    char *name;
    uint32_t gid;
    char **members; /* user names */
    size_t nmembers;
};

/* A uid once given to a Practitioner is never given to anyone else. */
struct mp_cache_reservation {
    char *profile; /* "Practitioner/<id>" */
    uint32_t uid;
};

struct mp_cache_data {
    int64_t generated_at; /* unix time of the sync/write */
    struct mp_cache_user *users;
    size_t nusers;
    struct mp_cache_group *groups;
    size_t ngroups;
    struct mp_cache_reservation *reservations;
    size_t nreservations;
};

/*
 * Creates cache_dir (0755) and cache_dir/private (0700) if missing, and
 * checks that both are root-owned (or owned by the euid, for unprivileged
 * tests) and not group/world-writable.  Returns 0 when usable.
 */
int mp_cache_prepare_dir(const char *cache_dir, const mp_logger *log);

/*
 * Writes data atomically: temp file (O_NOFOLLOW|O_EXCL|O_CLOEXEC) in
 * cache_dir, write, fsync, re-read and verify, rename, fsync the directory.
 * The caller must hold the lock (mp_cache_lock).  On any failure the old
 * file is untouched and the reason is logged.  Returns 0 on success.
 */
int mp_cache_write(const char *cache_dir, const struct mp_cache_data *data, const mp_logger *log);

/*
 * Reads the whole cache into memory.  A missing file yields an empty data
 * set and returns 0; a corrupted or insecure one returns -1 (logged).
 */
int mp_cache_load(const char *cache_dir, struct mp_cache_data *data, const mp_logger *log);

void mp_cache_data_free(struct mp_cache_data *data);

/* Writer lock (flock on cache_dir/.lock).  Returns an fd >= 0, or -1. */
int mp_cache_lock(const char *cache_dir, const mp_logger *log);
void mp_cache_unlock(int lock_fd);

/* Finds a user by name in loaded data; NULL if absent. */
const struct mp_cache_user *mp_cache_find_user(const struct mp_cache_data *data, const char *name);

/*
 * Inserts or replaces one user (matched by name or by profile) under the
 * lock, keeping every other entry, its user-private group and its uid
 * reservation.  Used by pam_medplum after a successful login.
 */
int mp_cache_upsert_user(const char *cache_dir, const struct mp_cache_user *user,
                         const mp_logger *log);

#endif
