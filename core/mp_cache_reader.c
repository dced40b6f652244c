/*
 * libc-only reader of accounts.db.  See mp_cache_format.h for the layout and
 * mp_cache_reader.h for the contract: every byte read is first proven to be
 * inside the image, so hostile input ends in MPC_CORRUPT, never in a crash.
 */
#include "mp_cache_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- small helpers --------------------------------------------------- */

static void set_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* Byte-wise little-endian loads: no alignment or endianness assumptions. */
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* ---- CRC-32, slice-by-8 (the reader checks whole files on every map) ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t mpc_crc32(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = 0xffffffffu;

    pthread_once(&crc_once, crc_init);
    while (len >= 8) {
        uint32_t lo = rd32(p) ^ c, hi = rd32(p + 4);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
            crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
            crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* ---- header validation ------------------------------------------------ */

/* A section of count elements of elem bytes lies inside the image. */
static bool section_ok(const struct mpc_view *v, uint32_t off, uint32_t count, uint32_t elem)
{
    if (count == 0)
        return off <= v->size;
    return off >= MPC_HEADER_SIZE && off % 4 == 0 &&
           (uint64_t)off + (uint64_t)count * elem <= v->size;
}

static void read_pair(const uint8_t *h, uint32_t at, uint32_t *off, uint32_t *count)
{
    *off = rd32(h + at);
    *count = rd32(h + at + 4);
}

static int check_header(struct mpc_view *v, size_t len, char *why, size_t whylen)
{
    const uint8_t *h = v->base;

    if (len < MPC_HEADER_SIZE || len > MPC_MAX_FILE_SIZE) {
        set_why(why, whylen, "bad size %zu", len);
        return -1;
    }
    if (memcmp(h + MPC_H_MAGIC, MPC_MAGIC, MPC_MAGIC_LEN) != 0) {
        set_why(why, whylen, "bad magic (not a pam_medplum cache)");
        return -1;
    }
    if (rd32(h + MPC_H_VERSION) != MPC_VERSION) {
        set_why(why, whylen, "unsupported format version %u", rd32(h + MPC_H_VERSION));
        return -1;
    }
    if (rd32(h + MPC_H_HEADER_SIZE) != MPC_HEADER_SIZE || rd32(h + MPC_H_FILE_SIZE) != len) {
        set_why(why, whylen, "header/file size mismatch (truncated?)");
        return -1;
    }
    v->size = (uint32_t)len;
    return 0;
}

static int check_sections(struct mpc_view *v, char *why, size_t whylen)
{
    const uint8_t *h = v->base;

    v->generated_at = (int64_t)rd64(h + MPC_H_GENERATED_AT);
    read_pair(h, MPC_H_STRTAB_OFF, &v->strtab_off, &v->strtab_size);
    read_pair(h, MPC_H_USERS_OFF, &v->users_off, &v->nusers);
    read_pair(h, MPC_H_GROUPS_OFF, &v->groups_off, &v->ngroups);
    read_pair(h, MPC_H_MEMBERS_OFF, &v->members_off, &v->nmembers);
    read_pair(h, MPC_H_RESV_OFF, &v->resv_off, &v->nresv);
    read_pair(h, MPC_H_MSHIP_OFF, &v->mship_off, &v->nmship);
    read_pair(h, MPC_H_MSHIP_GRP_OFF, &v->mship_grp_off, &v->nmship_grp);
    if (v->strtab_size == 0 || !section_ok(v, v->strtab_off, v->strtab_size, 1) ||
        v->base[v->strtab_off] != '\0' || v->base[v->strtab_off + v->strtab_size - 1] != '\0') {
        set_why(why, whylen, "bad string table");
        return -1;
    }
    if (!section_ok(v, v->users_off, v->nusers, MPC_USER_SIZE) ||
        !section_ok(v, v->groups_off, v->ngroups, MPC_GROUP_SIZE) ||
        !section_ok(v, v->members_off, v->nmembers, 4) ||
        !section_ok(v, v->resv_off, v->nresv, MPC_RESV_SIZE) ||
        !section_ok(v, v->mship_off, v->nmship, MPC_MSHIP_SIZE) ||
        !section_ok(v, v->mship_grp_off, v->nmship_grp, 4)) {
        set_why(why, whylen, "record section out of bounds");
        return -1;
    }
    for (int i = 0; i < MPC_IDX_COUNT; i++) {
        uint32_t n;
        read_pair(h, MPC_H_IDX_USER_NAME + 8u * (uint32_t)i, &v->idx_off[i], &n);
        v->idx_slots[i] = n;
        if (n == 0 || (n & (n - 1)) != 0 || !section_ok(v, v->idx_off[i], n, 4)) {
            set_why(why, whylen, "index %d malformed", i);
            return -1;
        }
    }
    return 0;
}

int mpc_view_init(struct mpc_view *v, const void *buf, size_t len, char *why, size_t whylen)
{
    int ret = -1;

    memset(v, 0, sizeof(*v));
    v->base = buf;
    if (buf == NULL || check_header(v, len, why, whylen) != 0)
        goto out;
    if (mpc_crc32(v->base + MPC_CRC_START, len - MPC_CRC_START) != rd32(v->base + MPC_H_CRC)) {
        set_why(why, whylen, "checksum mismatch");
        goto out;
    }
    if (check_sections(v, why, whylen) != 0)
        goto out;
    ret = 0;
out:
    if (ret != 0)
        memset(v, 0, sizeof(*v));
    return ret;
}

/* ---- record accessors ------------------------------------------------- */

/* Resolves a string offset; MPC_NOSTR gives NULL.  The string table ends in
 * NUL (checked at init), so any in-range offset is a terminated string. */
static int get_str(const struct mpc_view *v, uint32_t off, const char **out)
{
    if (off == MPC_NOSTR) {
        *out = NULL;
        return MPC_FOUND;
    }
    if (off >= v->strtab_size)
        return MPC_CORRUPT;
    *out = (const char *)v->base + v->strtab_off + off;
    return MPC_FOUND;
}

static const uint8_t *user_rec(const struct mpc_view *v, uint32_t i)
{
    return i < v->nusers ? v->base + v->users_off + (size_t)i * MPC_USER_SIZE : NULL;
}

static const uint8_t *group_rec(const struct mpc_view *v, uint32_t i)
{
    return i < v->ngroups ? v->base + v->groups_off + (size_t)i * MPC_GROUP_SIZE : NULL;
}

int mpc_user_at(const struct mpc_view *v, uint32_t i, struct mpc_user *out)
{
    const uint8_t *r = user_rec(v, i);
    struct mpc_user u; /* *out is only written on success */

    if (r == NULL)
        return MPC_CORRUPT;
    if (get_str(v, rd32(r + MPC_U_NAME), &u.name) != MPC_FOUND || u.name == NULL ||
        get_str(v, rd32(r + MPC_U_GECOS), &u.gecos) != MPC_FOUND ||
        get_str(v, rd32(r + MPC_U_HOME), &u.home) != MPC_FOUND ||
        get_str(v, rd32(r + MPC_U_SHELL), &u.shell) != MPC_FOUND ||
        get_str(v, rd32(r + MPC_U_EMAIL), &u.email) != MPC_FOUND ||
        get_str(v, rd32(r + MPC_U_PROFILE), &u.profile) != MPC_FOUND ||
        get_str(v, rd32(r + MPC_U_MEMBERSHIP), &u.membership) != MPC_FOUND)
        return MPC_CORRUPT;
    u.uid = rd32(r + MPC_U_UID);
    u.gid = rd32(r + MPC_U_GID);
    u.admin = (rd32(r + MPC_U_FLAGS) & MPC_UF_ADMIN) != 0;
    *out = u;
    return MPC_FOUND;
}

int mpc_group_at(const struct mpc_view *v, uint32_t i, struct mpc_group *out)
{
    const uint8_t *r = group_rec(v, i);
    struct mpc_group g;

    if (r == NULL || get_str(v, rd32(r + MPC_G_NAME), &g.name) != MPC_FOUND || g.name == NULL)
        return MPC_CORRUPT;
    g.gid = rd32(r + MPC_G_GID);
    g.first = rd32(r + MPC_G_FIRST);
    g.count = rd32(r + MPC_G_COUNT);
    if ((uint64_t)g.first + g.count > v->nmembers)
        return MPC_CORRUPT;
    *out = g;
    return MPC_FOUND;
}

int mpc_group_member(const struct mpc_view *v, const struct mpc_group *g, uint32_t j,
                     const char **name)
{
    uint64_t k = (uint64_t)g->first + j;
    const char *s;

    if (j >= g->count || k >= v->nmembers)
        return MPC_CORRUPT;
    if (get_str(v, rd32(v->base + v->members_off + k * 4), &s) != MPC_FOUND || s == NULL)
        return MPC_CORRUPT;
    *name = s;
    return MPC_FOUND;
}

int mpc_resv_at(const struct mpc_view *v, uint32_t i, struct mpc_resv *out)
{
    const uint8_t *p;
    struct mpc_resv r;

    if (i >= v->nresv)
        return MPC_CORRUPT;
    p = v->base + v->resv_off + (size_t)i * MPC_RESV_SIZE;
    if (get_str(v, rd32(p + MPC_R_PROFILE), &r.profile) != MPC_FOUND || r.profile == NULL)
        return MPC_CORRUPT;
    r.uid = rd32(p + MPC_R_UID);
    *out = r;
    return MPC_FOUND;
}

/* ---- hash index lookups ----------------------------------------------- */

/* Says whether record `rec` has the key; MPC_CORRUPT stops the probe. */
typedef int (*mpc_match_fn)(const struct mpc_view *v, uint32_t rec, const void *key);

/* Linear probing, bounded by the table size whatever the file contains. */
static int idx_find(const struct mpc_view *v, int which, uint32_t hash, uint32_t count,
                    mpc_match_fn match, const void *key, uint32_t *rec)
{
    uint32_t n = v->idx_slots[which];
    const uint8_t *t = v->base + v->idx_off[which];

    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = rd32(t + 4 * (size_t)((hash + i) & (n - 1)));
        int r;

        if (s == 0)
            return MPC_NOTFOUND;
        if (s > count)
            return MPC_CORRUPT;
        r = match(v, s - 1, key);
        if (r == MPC_FOUND)
            *rec = s - 1;
        if (r != MPC_NOTFOUND)
            return r;
    }
    return MPC_NOTFOUND;
}

static int name_matches(const struct mpc_view *v, uint32_t name_off, const void *key)
{
    const char *name;

    if (get_str(v, name_off, &name) != MPC_FOUND || name == NULL)
        return MPC_CORRUPT;
    return strcmp(name, key) == 0 ? MPC_FOUND : MPC_NOTFOUND;
}

static int match_user_name(const struct mpc_view *v, uint32_t rec, const void *key)
{
    return name_matches(v, rd32(user_rec(v, rec) + MPC_U_NAME), key);
}

static int match_uid(const struct mpc_view *v, uint32_t rec, const void *key)
{
    return rd32(user_rec(v, rec) + MPC_U_UID) == *(const uint32_t *)key ? MPC_FOUND : MPC_NOTFOUND;
}

static int match_group_name(const struct mpc_view *v, uint32_t rec, const void *key)
{
    return name_matches(v, rd32(group_rec(v, rec) + MPC_G_NAME), key);
}

static int match_gid(const struct mpc_view *v, uint32_t rec, const void *key)
{
    return rd32(group_rec(v, rec) + MPC_G_GID) == *(const uint32_t *)key ? MPC_FOUND : MPC_NOTFOUND;
}

static int match_mship_name(const struct mpc_view *v, uint32_t rec, const void *key)
{
    return name_matches(v, rd32(v->base + v->mship_off + (size_t)rec * MPC_MSHIP_SIZE), key);
}

int mpc_user_by_name(const struct mpc_view *v, const char *name, struct mpc_user *u)
{
    uint32_t rec;
    int r =
        idx_find(v, MPC_IDX_USER_NAME, mpc_hash_str(name), v->nusers, match_user_name, name, &rec);

    return r == MPC_FOUND ? mpc_user_at(v, rec, u) : r;
}

int mpc_user_by_uid(const struct mpc_view *v, uint32_t uid, struct mpc_user *u)
{
    uint32_t rec;
    int r = idx_find(v, MPC_IDX_UID, mpc_hash_id(uid), v->nusers, match_uid, &uid, &rec);

    return r == MPC_FOUND ? mpc_user_at(v, rec, u) : r;
}

int mpc_group_by_name(const struct mpc_view *v, const char *name, struct mpc_group *g)
{
    uint32_t rec;
    int r = idx_find(v, MPC_IDX_GROUP_NAME, mpc_hash_str(name), v->ngroups, match_group_name, name,
                     &rec);

    return r == MPC_FOUND ? mpc_group_at(v, rec, g) : r;
}

int mpc_group_by_gid(const struct mpc_view *v, uint32_t gid, struct mpc_group *g)
{
    uint32_t rec;
    int r = idx_find(v, MPC_IDX_GID, mpc_hash_id(gid), v->ngroups, match_gid, &gid, &rec);

    return r == MPC_FOUND ? mpc_group_at(v, rec, g) : r;
}

int mpc_member_groups(const struct mpc_view *v, const char *member, uint32_t *first,
                      uint32_t *count)
{
    uint32_t rec, f, n;
    const uint8_t *p;
    int r;

    if (member == NULL)
        return MPC_NOTFOUND;
    r = idx_find(v, MPC_IDX_MSHIP_NAME, mpc_hash_str(member), v->nmship, match_mship_name, member,
                 &rec);
    if (r != MPC_FOUND)
        return r;
    p = v->base + v->mship_off + (size_t)rec * MPC_MSHIP_SIZE;
    f = rd32(p + MPC_M_FIRST);
    n = rd32(p + MPC_M_COUNT);
    if ((uint64_t)f + n > v->nmship_grp)
        return MPC_CORRUPT;
    *first = f;
    *count = n;
    return MPC_FOUND;
}

int mpc_member_group_at(const struct mpc_view *v, uint32_t k, struct mpc_group *g)
{
    if (k >= v->nmship_grp)
        return MPC_CORRUPT;
    return mpc_group_at(v, rd32(v->base + v->mship_grp_off + (size_t)k * 4), g);
}

/* ---- full verification -------------------------------------------------- */

static int check_users(const struct mpc_view *v, char *why, size_t whylen)
{
    for (uint32_t i = 0; i < v->nusers; i++) {
        struct mpc_user u, byname, byuid;

        if (mpc_user_at(v, i, &u) != MPC_FOUND) {
            set_why(why, whylen, "user record %u malformed", i);
            return -1;
        }
        if (mpc_user_by_name(v, u.name, &byname) != MPC_FOUND || byname.name != u.name ||
            mpc_user_by_uid(v, u.uid, &byuid) != MPC_FOUND || byuid.name != u.name) {
            set_why(why, whylen, "user record %u not reachable through the indexes", i);
            return -1;
        }
    }
    return 0;
}

static int check_groups(const struct mpc_view *v, char *why, size_t whylen)
{
    for (uint32_t i = 0; i < v->ngroups; i++) {
        struct mpc_group g, byname, bygid;
        const char *m;

        if (mpc_group_at(v, i, &g) != MPC_FOUND) {
            set_why(why, whylen, "group record %u malformed", i);
            return -1;
        }
        for (uint32_t j = 0; j < g.count; j++) {
            if (mpc_group_member(v, &g, j, &m) != MPC_FOUND) {
                set_why(why, whylen, "group %u member %u malformed", i, j);
                return -1;
            }
        }
        if (mpc_group_by_name(v, g.name, &byname) != MPC_FOUND || byname.name != g.name ||
            mpc_group_by_gid(v, g.gid, &bygid) != MPC_FOUND || bygid.name != g.name) {
            set_why(why, whylen, "group record %u not reachable through the indexes", i);
            return -1;
        }
    }
    return 0;
}

static int check_memberships(const struct mpc_view *v, char *why, size_t whylen)
{
    for (uint32_t i = 0; i < v->nmship; i++) {
        const char *name;
        uint32_t first, count;
        struct mpc_group g;

        if (get_str(v, rd32(v->base + v->mship_off + (size_t)i * MPC_MSHIP_SIZE), &name) !=
                MPC_FOUND ||
            name == NULL || mpc_member_groups(v, name, &first, &count) != MPC_FOUND) {
            set_why(why, whylen, "membership record %u malformed or unreachable", i);
            return -1;
        }
        for (uint32_t k = 0; k < count; k++) {
            if (mpc_member_group_at(v, first + k, &g) != MPC_FOUND) {
                set_why(why, whylen, "membership record %u points outside the groups", i);
                return -1;
            }
        }
    }
    return 0;
}

int mpc_view_check_all(const struct mpc_view *v, char *why, size_t whylen)
{
    struct mpc_resv r;

    if (check_users(v, why, whylen) != 0 || check_groups(v, why, whylen) != 0 ||
        check_memberships(v, why, whylen) != 0)
        return -1;
    for (uint32_t i = 0; i < v->nresv; i++) {
        if (mpc_resv_at(v, i, &r) != MPC_FOUND) {
            set_why(why, whylen, "reservation record %u malformed", i);
            return -1;
        }
    }
    return 0;
}

/* ---- opening and mapping the file ------------------------------------ */

int mpc_check_stat(const struct stat *st, bool directory, const char *what, char *why,
                   size_t whylen)
{
    if (directory ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode)) {
        set_why(why, whylen, "%s: not a %s", what, directory ? "directory" : "regular file");
        return -1;
    }
    if (st->st_uid != 0 && st->st_uid != geteuid()) {
        set_why(why, whylen, "%s: owned by uid %u, must be owned by root", what,
                (unsigned)st->st_uid);
        return -1;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        set_why(why, whylen, "%s: writable by group or others (mode %04o)", what,
                (unsigned)(st->st_mode & 07777));
        return -1;
    }
    return 0;
}

static int open_failed(const char *what, int err, char *why, size_t whylen)
{
    set_why(why, whylen, "%s: cannot open: %s", what, strerror(err));
    if (err == ENOENT || err == ENOTDIR)
        return MPC_OPEN_MISSING;
    return err == ELOOP ? MPC_OPEN_INSECURE : MPC_OPEN_ERROR;
}

/* Opens and checks the directory, then the file relative to it, so the
 * checked directory is the one the file is taken from. */
static int open_checked(const char *dir, int *fd_out, struct stat *st, char *why, size_t whylen)
{
    int ret = MPC_OPEN_ERROR, dfd = -1, fd = -1;

    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
    if (dfd < 0) {
        ret = open_failed(dir, errno, why, whylen);
        goto out;
    }
    if (fstat(dfd, st) != 0 || mpc_check_stat(st, true, dir, why, whylen) != 0) {
        ret = MPC_OPEN_INSECURE;
        goto out;
    }
    fd = openat(dfd, MPC_FILE_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        ret = open_failed(MPC_FILE_NAME, errno, why, whylen);
        goto out;
    }
    if (fstat(fd, st) != 0 || mpc_check_stat(st, false, MPC_FILE_NAME, why, whylen) != 0) {
        ret = MPC_OPEN_INSECURE;
        goto out;
    }
    *fd_out = fd;
    fd = -1;
    ret = MPC_OPEN_OK;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    return ret;
}

static void remember_identity(struct mpc_file *f, const struct stat *st)
{
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->size = st->st_size;
    f->mtim = st->st_mtim;
    f->ctim = st->st_ctim;
    f->uid = st->st_uid;
    f->mode = st->st_mode;
}

int mpc_file_open(const char *dir, struct mpc_file *f, struct mpc_view *v, char *why, size_t whylen)
{
    int ret, fd = -1;
    struct stat st;
    void *addr = MAP_FAILED;

    memset(f, 0, sizeof(*f));
    ret = open_checked(dir, &fd, &st, why, whylen);
    if (ret != MPC_OPEN_OK)
        goto out;
    ret = MPC_OPEN_CORRUPT;
    if (st.st_size < (off_t)MPC_HEADER_SIZE || st.st_size > (off_t)MPC_MAX_FILE_SIZE) {
        set_why(why, whylen, "%s/%s: bad size %lld", dir, MPC_FILE_NAME, (long long)st.st_size);
        goto out;
    }
    addr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
        set_why(why, whylen, "%s/%s: mmap: %s", dir, MPC_FILE_NAME, strerror(errno));
        ret = MPC_OPEN_ERROR;
        goto out;
    }
    if (mpc_view_init(v, addr, (size_t)st.st_size, why, whylen) != 0)
        goto out;
    f->addr = addr;
    f->len = (size_t)st.st_size;
    remember_identity(f, &st);
    addr = MAP_FAILED;
    ret = MPC_OPEN_OK;
out:
    if (addr != MAP_FAILED)
        munmap(addr, (size_t)st.st_size);
    if (fd >= 0)
        close(fd);
    return ret;
}

void mpc_file_close(struct mpc_file *f)
{
    if (f->addr != NULL)
        munmap(f->addr, f->len);
    memset(f, 0, sizeof(*f));
}

bool mpc_file_unchanged(const struct mpc_file *f, const struct stat *st)
{
    return f->addr != NULL && st->st_dev == f->dev && st->st_ino == f->ino &&
           st->st_size == f->size && st->st_mtim.tv_sec == f->mtim.tv_sec &&
           st->st_mtim.tv_nsec == f->mtim.tv_nsec && st->st_ctim.tv_sec == f->ctim.tv_sec &&
           st->st_ctim.tv_nsec == f->ctim.tv_nsec && st->st_uid == f->uid && st->st_mode == f->mode;
}
