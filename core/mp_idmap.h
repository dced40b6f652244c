/*
 * Mapping Medplum Practitioners to local accounts (medplumctl sync, and
 * pam_medplum after a login).
 *
 * User name: username_source = email (default): the local part of the
 *   Practitioner's email (first telecom with system "email", else
 *   ProjectMembership.user.display), lowercased; identifier:<system>: the
 *   value of the Practitioner identifier with that system, taken as is.
 *   A name that is not a valid portable user name (mp_is_valid_username),
 *   that another Practitioner maps to as well, or that exists in the local
 *   passwd or group file is skipped with a warning, never altered.  When
 *   several Practitioners claim one name and one of them already holds it in
 *   the cache, that one keeps it; otherwise none gets it.
 *
 * Login email: ProjectMembership.user.display (Medplum copies the User's
 *   email there), else the Practitioner's email.
 *
 * uid (uid_source = hash, the default), the same on every workstation:
 *   H   = the first 8 bytes, big-endian, of SHA-256 of the Practitioner id
 *         (its lowercase UUID text, without "Practitioner/")
 *   N   = uid_max - uid_min + 1
 *   uid = uid_min + ((H + k) mod N) for the smallest k >= 0 whose uid is
 *         free: not reserved for another Practitioner in the cache, not given
 *         earlier in this run, not a uid or gid of the local passwd/group
 *         files, not primary_gid/admin_gid, not 65534/65535.
 *   Practitioners are numbered in order of their id, so a collision resolves
 *   the same way wherever the same set of Practitioners is seen.  A uid once
 *   given is reserved for its Practitioner in the cache for ever (even after
 *   they leave) and is reused on their return.
 * uid_source = identifier:<system>: the decimal value of the Practitioner
 *   identifier with that system (else the ProjectMembership identifier); it
 *   must lie in [uid_min, uid_max] and be free, else the user is skipped.  A
 *   uid already reserved for the Practitioner wins over a changed pin (the
 *   files on disk belong to the reserved one).
 *
 * Groups: primary_group = private: a group of the user's name with gid = uid;
 *   otherwise the shared primary_group/primary_gid.  admin_group/admin_gid,
 *   when set, lists the project admins (membership admin: true).  A group
 *   whose name exists in the local group file is not emitted.
 *
 * gecos: the Practitioner's name (text, else given names and family),
 *   else the membership's profile display; made valid UTF-8 (bad bytes
 *   become '?'), with ':', ',' and control characters (C0, DEL, C1) turned
 *   into spaces, runs of spaces collapsed, at most MP_GECOS_MAX bytes.
 * home: home_template with %u = user name (%% = %); shell: shell.
 */
#ifndef MP_IDMAP_H
#define MP_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp_cache.h"
#include "mp_config.h"
#include "mp_directory.h"
#include "mp_log.h"
#include "mp_state.h"

#ifndef MP_GROUP_FILE
#define MP_GROUP_FILE "/etc/group"
#endif

#define MP_GECOS_MAX 256

/* ---- local account files (read directly: asking NSS would ask us) ---- */

struct mp_localdb {
    char **users; /* sorted */
    size_t nusers;
    char **groups; /* sorted */
    size_t ngroups;
    uint32_t *ids; /* every uid and gid of both files, sorted */
    size_t nids;
};

/* Reads both files; a file that cannot be read fails (collisions could not
 * be ruled out).  Returns 0 or -1 (logged). */
int mp_localdb_load(struct mp_localdb *db, const char *passwd_path, const char *group_path,
                    const mp_logger *log);
bool mp_localdb_has_user(const struct mp_localdb *db, const char *name);
bool mp_localdb_has_group(const struct mp_localdb *db, const char *name);
bool mp_localdb_has_id(const struct mp_localdb *db, uint32_t id);
void mp_localdb_free(struct mp_localdb *db);

/* True if the name is in the given group-format file (no NSS involved). */
bool mp_group_file_has(const char *path, const char *group);

/* ---- the rules, one by one (exposed for the unit tests) ---- */

uint64_t mp_idmap_uid_hash(const char *practitioner_id);
/* The k-th uid of the probe sequence of a Practitioner. */
uint32_t mp_idmap_uid_probe(const char *practitioner_id, uint32_t uid_min, uint32_t uid_max,
                            uint64_t k);

/* Local user name of an entry; 0, or -1 with why. */
int mp_idmap_username(const struct mp_config *cfg, const struct mp_dir_entry *e, char *out,
                      size_t outlen, char *why, size_t why_len);
/* "alice@example.com" -> "alice"; 0, or -1 with why. */
int mp_idmap_name_from_email(const char *email, char *out, size_t outlen, char *why,
                             size_t why_len);
void mp_idmap_gecos(const char *in, char *out, size_t outlen);
int mp_idmap_home(const char *home_template, const char *name, char *out, size_t outlen);

/* ---- the whole mapping ---- */

struct mp_idmap_skip {
    char *profile;
    char *name; /* the name it would have had, or NULL */
    char reason[160];
};

struct mp_idmap_state {
    char *name;
    enum mp_membership_state state;
};

struct mp_idmap_result {
    struct mp_cache_data data; /* the complete new cache content */
    struct mp_idmap_skip *skipped;
    size_t nskipped;
    struct mp_idmap_state *states; /* membership states to record (membership source) */
    size_t nstates;
    size_t inactive; /* memberships with active: false */
};

/*
 * Maps a fetched directory onto a new cache content, keeping every
 * reservation of `old`.  Never fails because of one entry: those are
 * skipped with a reason (and logged as warnings).  Returns -1 only on
 * internal errors (out of memory).
 */
int mp_idmap_build(const struct mp_config *cfg, const struct mp_directory *dir,
                   const struct mp_cache_data *old, const struct mp_localdb *local, int64_t now,
                   struct mp_idmap_result *out, const mp_logger *log);
void mp_idmap_result_free(struct mp_idmap_result *res);

/*
 * After a successful login: makes sure the user has an entry (so a first
 * console login works before any sync).  An existing entry of the same
 * Practitioner is left alone; otherwise the uid comes from the reservation
 * or the hash probe (as above), the group is private or primary_group, gecos
 * the display name, written with mp_cache_upsert_user.  With uid_source =
 * identifier:<system> nothing is written (only sync knows the pinned uid).
 * Returns 0 when the entry exists or was written or nothing was to be done,
 * -1 otherwise (logged; the login itself is not affected).
 */
int mp_idmap_record_login(const struct mp_config *cfg, const char *username, const char *email,
                          const char *profile, const char *display, const mp_logger *log);

/* The same with explicit passwd/group files (tests). */
int mp_idmap_record_login_files(const struct mp_config *cfg, const char *username,
                                const char *email, const char *profile, const char *display,
                                const char *passwd_path, const char *group_path,
                                const mp_logger *log);

#endif
