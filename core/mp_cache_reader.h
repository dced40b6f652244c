/*
 * Reader of accounts.db (format in mp_cache_format.h), shared by the writer
 * (verification, mp_cache_load) and by libnss_medplum.so.2.
 *
 * libc only: no allocation, no logging, no global state, so it is safe in any
 * process the NSS module is loaded into.  Problems are described in a
 * caller-supplied `why` buffer and the caller decides how to log them.
 *
 * Every accessor bounds-checks what it reads: a hostile file yields
 * MPC_CORRUPT, never an out-of-bounds read.  Outputs are written only on
 * MPC_FOUND; a NULL name is simply not found.  Strings returned point into the
 * mapping and are NUL-terminated within it.
 */
#ifndef MP_CACHE_READER_H
#define MP_CACHE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "mp_cache_format.h"

/* Lookup results. */
enum { MPC_FOUND = 0, MPC_NOTFOUND = 1, MPC_CORRUPT = 2 };

/* mpc_file_open results. */
enum {
    MPC_OPEN_OK = 0,
    MPC_OPEN_MISSING,  /* directory or file does not exist */
    MPC_OPEN_INSECURE, /* wrong owner or mode, not a regular file/directory */
    MPC_OPEN_CORRUPT,  /* fails validation */
    MPC_OPEN_ERROR,    /* anything else (permissions, mmap, ...) */
};

#define MPC_WHY_LEN 256

struct mpc_view {
    const uint8_t *base;
    uint32_t size;
    int64_t generated_at;
    uint32_t strtab_off, strtab_size;
    uint32_t users_off, nusers;
    uint32_t groups_off, ngroups;
    uint32_t members_off, nmembers;
    uint32_t resv_off, nresv;
    uint32_t mship_off, nmship;
    uint32_t mship_grp_off, nmship_grp;
    uint32_t idx_off[MPC_IDX_COUNT];
    uint32_t idx_slots[MPC_IDX_COUNT];
};

struct mpc_user {
    const char *name;
    const char *gecos; /* NULL when absent (also home, shell, email, ...) */
    const char *home;
    const char *shell;
    const char *email;
    const char *profile;
    const char *membership;
    uint32_t uid;
    uint32_t gid;
    bool admin;
};

struct mpc_group {
    const char *name;
    uint32_t gid;
    uint32_t first; /* index into the members array */
    uint32_t count;
};

struct mpc_resv {
    const char *profile;
    uint32_t uid;
};

/* CRC-32 (IEEE 802.3, zlib's crc32()). Thread-safe. */
uint32_t mpc_crc32(const void *buf, size_t len);

/* Validates header, section bounds, string table and checksum of an
 * in-memory image.  O(size) once; the accessors below stay bounds-checked. */
int mpc_view_init(struct mpc_view *v, const void *buf, size_t len, char *why, size_t whylen);

/* Walks every record and index entry (writer verification, full loads). */
int mpc_view_check_all(const struct mpc_view *v, char *why, size_t whylen);

int mpc_user_at(const struct mpc_view *v, uint32_t i, struct mpc_user *u);
int mpc_user_by_name(const struct mpc_view *v, const char *name, struct mpc_user *u);
int mpc_user_by_uid(const struct mpc_view *v, uint32_t uid, struct mpc_user *u);

int mpc_group_at(const struct mpc_view *v, uint32_t i, struct mpc_group *g);
int mpc_group_by_name(const struct mpc_view *v, const char *name, struct mpc_group *g);
int mpc_group_by_gid(const struct mpc_view *v, uint32_t gid, struct mpc_group *g);
/* j-th member name of g (j < g->count). */
int mpc_group_member(const struct mpc_view *v, const struct mpc_group *g, uint32_t j,
                     const char **name);

int mpc_resv_at(const struct mpc_view *v, uint32_t i, struct mpc_resv *r);

/* Groups listing `member` as a member: sets *first and *count to a range of the
 * membership-group array; read each with mpc_member_group_at. */
int mpc_member_groups(const struct mpc_view *v, const char *member, uint32_t *first,
                      uint32_t *count);
int mpc_member_group_at(const struct mpc_view *v, uint32_t k, struct mpc_group *g);

/*
 * Ownership rule of the cache: owned by uid 0 or by the effective uid (so
 * unprivileged test runs work), not writable by group or others; a
 * directory must be a directory, a file a regular file.
 */
int mpc_check_stat(const struct stat *st, bool directory, const char *what, char *why,
                   size_t whylen);

/* A read-only private mapping of dir/accounts.db; no descriptor stays open. */
struct mpc_file {
    void *addr;
    size_t len;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
    uid_t uid;
    mode_t mode;
};

/* Opens (O_NOFOLLOW|O_CLOEXEC), checks directory and file, maps, validates
 * the header and checksum.  Returns MPC_OPEN_*; on success f and v are set
 * and f must be closed with mpc_file_close. */
int mpc_file_open(const char *dir, struct mpc_file *f, struct mpc_view *v, char *why,
                  size_t whylen);
void mpc_file_close(struct mpc_file *f);

/* True when st (from stat() of the file path) is the file that f maps,
 * unchanged (device, inode, size, mtime, ctime, owner, mode). */
bool mpc_file_unchanged(const struct mpc_file *f, const struct stat *st);

#endif
