/*
 * accounts.db encoder: builds the whole image in memory (string table with
 * duplicates folded, fixed-size records, membership map, hash indexes) so the
 * writer can verify it with the reader before a byte reaches the disk.
 */
#include "mp_cache_encode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_cache_format.h"
#include "mp_cache_reader.h"
#include "mp_validate.h"

static void set_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- string table with de-duplication -------------------------------- */

struct strtab {
    char *buf;
    size_t len, cap;
    uint32_t *slots; /* offset + 1, 0 = empty */
    size_t nslots, used;
};

static int st_grow_slots(struct strtab *t)
{
    size_t n = t->nslots ? t->nslots * 2 : 256;
    uint32_t *slots = calloc(n, sizeof(*slots));

    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < t->nslots; i++) {
        uint32_t s = t->slots[i];
        size_t j;
        if (s == 0)
            continue;
        j = mpc_hash_str(t->buf + s - 1) & (n - 1);
        while (slots[j] != 0)
            j = (j + 1) & (n - 1);
        slots[j] = s;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    return 0;
}

static int st_append(struct strtab *t, const char *s, size_t n, uint32_t *off)
{
    if (t->len + n + 1 > MPC_MAX_FILE_SIZE)
        return -1;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        char *p;
        while (cap < t->len + n + 1)
            cap *= 2;
        p = realloc(t->buf, cap);
        if (p == NULL)
            return -1;
        t->buf = p;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n + 1);
    *off = (uint32_t)t->len;
    t->len += n + 1;
    return 0;
}

static int st_init(struct strtab *t)
{
    uint32_t off;

    memset(t, 0, sizeof(*t));
    return st_append(t, "", 0, &off); /* offset 0 is "" */
}

static void st_free(struct strtab *t)
{
    free(t->buf);
    free(t->slots);
}

/* Adds s (NULL gives MPC_NOSTR); equal strings share one offset. */
static int st_add(struct strtab *t, const char *s, uint32_t *off)
{
    size_t j;

    if (s == NULL) {
        *off = MPC_NOSTR;
        return 0;
    }
    if (s[0] == '\0') {
        *off = 0;
        return 0;
    }
    if ((t->used + 1) * 2 > t->nslots && st_grow_slots(t) != 0)
        return -1;
    j = mpc_hash_str(s) & (t->nslots - 1);
    while (t->slots[j] != 0) {
        if (strcmp(t->buf + t->slots[j] - 1, s) == 0) {
            *off = t->slots[j] - 1;
            return 0;
        }
        j = (j + 1) & (t->nslots - 1);
    }
    if (st_append(t, s, strlen(s), off) != 0)
        return -1;
    t->slots[j] = *off + 1;
    t->used++;
    return 0;
}

/* ---- sections ---------------------------------------------------------- */

struct section {
    uint8_t *buf;
    uint32_t count; /* records, or slots for an index */
    size_t bytes;
    uint32_t off; /* in the image */
};

struct image {
    struct strtab st;
    struct section users, groups, members, resv, mship, mship_grp;
    struct section idx[MPC_IDX_COUNT];
};

static int section_alloc(struct section *s, size_t count, size_t elem)
{
    if (count > MPC_MAX_FILE_SIZE / elem)
        return -1;
    s->count = (uint32_t)count;
    s->bytes = count * elem;
    s->buf = calloc(count ? count : 1, elem);
    return s->buf == NULL ? -1 : 0;
}

static int encode_users(struct image *im, const struct mp_cache_data *d)
{
    if (section_alloc(&im->users, d->nusers, MPC_USER_SIZE) != 0)
        return -1;
    for (size_t i = 0; i < d->nusers; i++) {
        const struct mp_cache_user *u = &d->users[i];
        uint8_t *r = im->users.buf + i * MPC_USER_SIZE;
        const char *strs[] = {u->name,  u->gecos,   u->home,         u->shell,
                              u->email, u->profile, u->membership_id};
        const unsigned at[] = {MPC_U_NAME,  MPC_U_GECOS,   MPC_U_HOME,      MPC_U_SHELL,
                               MPC_U_EMAIL, MPC_U_PROFILE, MPC_U_MEMBERSHIP};
        for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
            uint32_t off;
            if (st_add(&im->st, strs[k], &off) != 0)
                return -1;
            wr32(r + at[k], off);
        }
        wr32(r + MPC_U_UID, u->uid);
        wr32(r + MPC_U_GID, u->gid);
        wr32(r + MPC_U_FLAGS, u->admin ? MPC_UF_ADMIN : 0);
    }
    return 0;
}

static int encode_groups(struct image *im, const struct mp_cache_data *d)
{
    size_t nmembers = 0, m = 0;

    for (size_t i = 0; i < d->ngroups; i++) {
        if (d->groups[i].nmembers > MPC_MAX_FILE_SIZE - nmembers)
            return -1;
        nmembers += d->groups[i].nmembers;
    }
    if (section_alloc(&im->groups, d->ngroups, MPC_GROUP_SIZE) != 0 ||
        section_alloc(&im->members, nmembers, 4) != 0)
        return -1;
    for (size_t i = 0; i < d->ngroups; i++) {
        const struct mp_cache_group *g = &d->groups[i];
        uint8_t *r = im->groups.buf + i * MPC_GROUP_SIZE;
        uint32_t off;
        if (st_add(&im->st, g->name, &off) != 0)
            return -1;
        wr32(r + MPC_G_NAME, off);
        wr32(r + MPC_G_GID, g->gid);
        wr32(r + MPC_G_FIRST, (uint32_t)m);
        wr32(r + MPC_G_COUNT, (uint32_t)g->nmembers);
        for (size_t j = 0; j < g->nmembers; j++, m++) {
            if (st_add(&im->st, g->members[j], &off) != 0)
                return -1;
            wr32(im->members.buf + m * 4, off);
        }
    }
    return 0;
}

static int encode_resv(struct image *im, const struct mp_cache_data *d)
{
    if (section_alloc(&im->resv, d->nreservations, MPC_RESV_SIZE) != 0)
        return -1;
    for (size_t i = 0; i < d->nreservations; i++) {
        uint8_t *r = im->resv.buf + i * MPC_RESV_SIZE;
        uint32_t off;
        if (st_add(&im->st, d->reservations[i].profile, &off) != 0)
            return -1;
        wr32(r + MPC_R_PROFILE, off);
        wr32(r + MPC_R_UID, d->reservations[i].uid);
    }
    return 0;
}

/* (member name offset, group index) pairs; equal names share an offset, so
 * sorting by offset brings each member's groups together. */
struct mpair {
    uint32_t name;
    uint32_t group;
};

static int mpair_cmp(const void *a, const void *b)
{
    const struct mpair *x = a, *y = b;

    if (x->name != y->name)
        return x->name < y->name ? -1 : 1;
    return x->group < y->group ? -1 : x->group > y->group;
}

static int encode_memberships(struct image *im)
{
    size_t n = im->members.count, nnames = 0, k = 0;
    struct mpair *pairs = calloc(n ? n : 1, sizeof(*pairs));
    int ret = -1;

    if (pairs == NULL)
        return -1;
    for (uint32_t g = 0; g < im->groups.count; g++) {
        const uint8_t *r = im->groups.buf + (size_t)g * MPC_GROUP_SIZE;
        uint32_t first = rd32(r + MPC_G_FIRST), count = rd32(r + MPC_G_COUNT);
        for (uint32_t j = 0; j < count; j++, k++) {
            pairs[k].name = rd32(im->members.buf + ((size_t)first + j) * 4);
            pairs[k].group = g;
        }
    }
    qsort(pairs, n, sizeof(*pairs), mpair_cmp);
    for (size_t i = 0; i < n; i++)
        nnames += (i == 0 || pairs[i].name != pairs[i - 1].name);
    if (section_alloc(&im->mship, nnames, MPC_MSHIP_SIZE) != 0 ||
        section_alloc(&im->mship_grp, n, 4) != 0)
        goto out;
    for (size_t i = 0, r = 0; i < n; i++) {
        uint8_t *rec;
        if (i > 0 && pairs[i].name == pairs[i - 1].name) {
            rec = im->mship.buf + (r - 1) * MPC_MSHIP_SIZE;
            wr32(rec + MPC_M_COUNT, (uint32_t)(i + 1) - rd32(rec + MPC_M_FIRST));
        } else {
            rec = im->mship.buf + r++ * MPC_MSHIP_SIZE;
            wr32(rec + MPC_M_NAME, pairs[i].name);
            wr32(rec + MPC_M_FIRST, (uint32_t)i);
            wr32(rec + MPC_M_COUNT, 1);
        }
        wr32(im->mship_grp.buf + i * 4, pairs[i].group);
    }
    ret = 0;
out:
    free(pairs);
    return ret;
}

/* ---- indexes ----------------------------------------------------------- */

static uint32_t rec_field(const struct section *s, size_t elem, uint32_t i, unsigned at)
{
    return rd32(s->buf + (size_t)i * elem + at);
}

/* Hash of record i for index `which`. */
static uint32_t index_hash(const struct image *im, int which, uint32_t i)
{
    switch (which) {
    case MPC_IDX_USER_NAME:
        return mpc_hash_str(im->st.buf + rec_field(&im->users, MPC_USER_SIZE, i, MPC_U_NAME));
    case MPC_IDX_UID:
        return mpc_hash_id(rec_field(&im->users, MPC_USER_SIZE, i, MPC_U_UID));
    case MPC_IDX_GROUP_NAME:
        return mpc_hash_str(im->st.buf + rec_field(&im->groups, MPC_GROUP_SIZE, i, MPC_G_NAME));
    case MPC_IDX_GID:
        return mpc_hash_id(rec_field(&im->groups, MPC_GROUP_SIZE, i, MPC_G_GID));
    default:
        return mpc_hash_str(im->st.buf + rec_field(&im->mship, MPC_MSHIP_SIZE, i, MPC_M_NAME));
    }
}

static int build_index(struct image *im, int which, uint32_t count)
{
    size_t n = 1;
    struct section *s = &im->idx[which];

    while (n < (size_t)count * 2)
        n *= 2;
    if (section_alloc(s, n, 4) != 0)
        return -1;
    for (uint32_t i = 0; i < count; i++) {
        size_t j = index_hash(im, which, i) & (n - 1);
        while (rec_field(s, 4, (uint32_t)j, 0) != 0)
            j = (j + 1) & (n - 1);
        wr32(s->buf + j * 4, i + 1);
    }
    return 0;
}

/* ---- assembling the image ---------------------------------------------- */

static struct section *image_section(struct image *im, int k)
{
    struct section *fixed[] = {&im->users, &im->groups, &im->members,
                               &im->resv,  &im->mship,  &im->mship_grp};

    return k < 6 ? fixed[k] : &im->idx[k - 6];
}

#define IMAGE_SECTIONS (6 + MPC_IDX_COUNT)

static int assemble(struct image *im, int64_t generated_at, uint8_t **out, size_t *outlen)
{
    static const unsigned hdr_at[IMAGE_SECTIONS] = {
        MPC_H_USERS_OFF,      MPC_H_GROUPS_OFF,    MPC_H_MEMBERS_OFF,   MPC_H_RESV_OFF,
        MPC_H_MSHIP_OFF,      MPC_H_MSHIP_GRP_OFF, MPC_H_IDX_USER_NAME, MPC_H_IDX_UID,
        MPC_H_IDX_GROUP_NAME, MPC_H_IDX_GID,       MPC_H_IDX_MSHIP_NAME};
    size_t total = MPC_HEADER_SIZE;
    uint8_t *img;

    for (int k = 0; k < IMAGE_SECTIONS; k++) {
        image_section(im, k)->off = (uint32_t)total;
        total += image_section(im, k)->bytes; /* each is a multiple of 4 */
        if (total > MPC_MAX_FILE_SIZE)
            return -1;
    }
    if (im->st.len > MPC_MAX_FILE_SIZE - total)
        return -1;
    img = calloc(1, total + im->st.len);
    if (img == NULL)
        return -1;
    memcpy(img + MPC_H_MAGIC, MPC_MAGIC, MPC_MAGIC_LEN);
    wr32(img + MPC_H_VERSION, MPC_VERSION);
    wr32(img + MPC_H_HEADER_SIZE, MPC_HEADER_SIZE);
    wr32(img + MPC_H_FILE_SIZE, (uint32_t)(total + im->st.len));
    wr32(img + MPC_H_GENERATED_AT, (uint32_t)(uint64_t)generated_at);
    wr32(img + MPC_H_GENERATED_AT + 4, (uint32_t)((uint64_t)generated_at >> 32));
    wr32(img + MPC_H_STRTAB_OFF, (uint32_t)total);
    wr32(img + MPC_H_STRTAB_OFF + 4, (uint32_t)im->st.len);
    memcpy(img + total, im->st.buf, im->st.len);
    for (int k = 0; k < IMAGE_SECTIONS; k++) {
        struct section *s = image_section(im, k);
        wr32(img + hdr_at[k], s->off);
        wr32(img + hdr_at[k] + 4, s->count);
        if (s->bytes > 0)
            memcpy(img + s->off, s->buf, s->bytes);
    }
    total += im->st.len;
    wr32(img + MPC_H_CRC, mpc_crc32(img + MPC_CRC_START, total - MPC_CRC_START));
    *out = img;
    *outlen = total;
    return 0;
}

int mp_cache_encode(const struct mp_cache_data *data, uint8_t **out, size_t *outlen, char *why,
                    size_t whylen)
{
    struct image im;
    int ret = -1;

    *out = NULL;
    *outlen = 0;
    memset(&im, 0, sizeof(im));
    if (st_init(&im.st) != 0 || encode_users(&im, data) != 0 || encode_groups(&im, data) != 0 ||
        encode_resv(&im, data) != 0 || encode_memberships(&im) != 0 ||
        build_index(&im, MPC_IDX_USER_NAME, im.users.count) != 0 ||
        build_index(&im, MPC_IDX_UID, im.users.count) != 0 ||
        build_index(&im, MPC_IDX_GROUP_NAME, im.groups.count) != 0 ||
        build_index(&im, MPC_IDX_GID, im.groups.count) != 0 ||
        build_index(&im, MPC_IDX_MSHIP_NAME, im.mship.count) != 0 ||
        assemble(&im, data->generated_at, out, outlen) != 0) {
        set_why(why, whylen, "cannot encode the cache (out of memory or over %u bytes)",
                MPC_MAX_FILE_SIZE);
        goto out;
    }
    ret = 0;
out:
    st_free(&im.st);
    for (int k = 0; k < IMAGE_SECTIONS; k++)
        free(image_section(&im, k)->buf);
    return ret;
}

/* ---- validation ---------------------------------------------------------- */

#define MPC_FIELD_MAX 1024

/* No control characters; passwd fields also no ':' (the field separator of
 * getent output and of every tool that parses it). */
static bool field_ok(const char *s, bool passwd_field)
{
    size_t n = 0;

    if (s == NULL)
        return true;
    for (; *s != '\0'; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || (passwd_field && c == ':') || n >= MPC_FIELD_MAX)
            return false;
    }
    return true;
}

/* uid/gid 0 is root's, (uint32_t)-1 means "unchanged" to chown/setresuid. */
static bool id_ok(uint32_t id)
{
    return id != 0 && id != UINT32_MAX;
}

struct key {
    const char *s;
    uint32_t id;
};

static int key_str_cmp(const void *a, const void *b)
{
    return strcmp(((const struct key *)a)->s, ((const struct key *)b)->s);
}

static int key_id_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct key *)a)->id, y = ((const struct key *)b)->id;

    return x < y ? -1 : x > y;
}

/* Sorts keys and logs each key that occurs more than once. */
static int report_dups(struct key *k, size_t n, bool by_str, const char *what, const mp_logger *log)
{
    int problems = 0;

    qsort(k, n, sizeof(*k), by_str ? key_str_cmp : key_id_cmp);
    for (size_t i = 1; i < n; i++) {
        if ((by_str ? key_str_cmp(&k[i - 1], &k[i]) : key_id_cmp(&k[i - 1], &k[i])) != 0)
            continue;
        if (by_str)
            mp_log(log, LOG_ERR, "cache: duplicate %s \"%s\"", what, k[i].s);
        else
            mp_log(log, LOG_ERR, "cache: duplicate %s %u", what, (unsigned)k[i].id);
        problems++;
    }
    return problems;
}

static int check_user(const struct mp_cache_user *u, size_t i, const mp_logger *log)
{
    int problems = 0;

    if (!mp_is_valid_username(u->name)) {
        mp_log(log, LOG_ERR, "cache: user %zu: invalid user name", i);
        return 1;
    }
    if (!id_ok(u->uid) || !id_ok(u->gid)) {
        mp_log(log, LOG_ERR, "cache: user %s: uid %u / gid %u not allowed", u->name,
               (unsigned)u->uid, (unsigned)u->gid);
        problems++;
    }
    if (!field_ok(u->gecos, true) || !field_ok(u->home, true) || !field_ok(u->shell, true) ||
        !field_ok(u->email, false) || !field_ok(u->profile, false) ||
        !field_ok(u->membership_id, false)) {
        mp_log(log, LOG_ERR,
               "cache: user %s: a field contains ':' or control characters "
               "or is too long",
               u->name);
        problems++;
    }
    return problems;
}

static int check_group(const struct mp_cache_group *g, size_t i, const mp_logger *log)
{
    int problems = 0;
    struct key *k;

    if (!mp_is_valid_username(g->name)) {
        mp_log(log, LOG_ERR, "cache: group %zu: invalid group name", i);
        return 1;
    }
    if (!id_ok(g->gid)) {
        mp_log(log, LOG_ERR, "cache: group %s: gid %u not allowed", g->name, (unsigned)g->gid);
        problems++;
    }
    if (g->nmembers == 0)
        return problems;
    if (g->members == NULL || (k = calloc(g->nmembers, sizeof(*k))) == NULL)
        return problems + 1;
    for (size_t j = 0; j < g->nmembers; j++) {
        k[j].s = g->members[j] != NULL ? g->members[j] : "";
        if (!mp_is_valid_username(g->members[j])) {
            mp_log(log, LOG_ERR, "cache: group %s: invalid member name", g->name);
            problems++;
        }
    }
    if (problems == 0)
        problems += report_dups(k, g->nmembers, true, "member", log);
    free(k);
    return problems;
}

/* Reservations are the uid ledger: one uid per profile, one profile per uid,
 * and every user with a profile must hold exactly its reserved uid. */
static int check_user_reservation(const struct mp_cache_user *u, const struct key *by_profile,
                                  const struct key *by_uid, size_t n, const mp_logger *log)
{
    struct key want = {u->profile, u->uid};
    const struct key *r;
    int problems = 0;

    if (u->profile == NULL)
        return 0;
    r = bsearch(&want, by_uid, n, sizeof(*r), key_id_cmp);
    if (r != NULL && strcmp(r->s, u->profile) != 0) {
        mp_log(log, LOG_ERR, "cache: user %s: uid %u is reserved for %s", u->name, (unsigned)u->uid,
               r->s);
        problems++;
    }
    r = bsearch(&want, by_profile, n, sizeof(*r), key_str_cmp);
    if (r != NULL && r->id != u->uid) {
        mp_log(log, LOG_ERR, "cache: user %s: %s holds reserved uid %u, not %u", u->name,
               u->profile, (unsigned)r->id, (unsigned)u->uid);
        problems++;
    }
    return problems;
}

static int check_reservations(const struct mp_cache_data *d, const mp_logger *log)
{
    size_t n = d->nreservations;
    struct key *by_profile = calloc(n ? n : 1, sizeof(struct key));
    struct key *by_uid = calloc(n ? n : 1, sizeof(struct key));
    int problems = 0;

    if (by_profile == NULL || by_uid == NULL) {
        problems = 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mp_cache_reservation *r = &d->reservations[i];
        if (r->profile == NULL || r->profile[0] == '\0' || !field_ok(r->profile, false) ||
            !id_ok(r->uid)) {
            mp_log(log, LOG_ERR, "cache: reservation %zu is malformed", i);
            problems++;
            continue;
        }
        by_profile[i] = by_uid[i] = (struct key){r->profile, r->uid};
    }
    if (problems != 0)
        goto out;
    problems += report_dups(by_profile, n, true, "reservation profile", log);
    problems += report_dups(by_uid, n, false, "reserved uid", log);
    for (size_t i = 0; i < d->nusers && problems == 0; i++)
        problems += check_user_reservation(&d->users[i], by_profile, by_uid, n, log);
out:
    free(by_profile);
    free(by_uid);
    return problems;
}

static int check_unique_users(const struct mp_cache_data *d, const mp_logger *log)
{
    size_t n = d->nusers, np = 0;
    struct key *names = calloc(n ? n : 1, sizeof(struct key));
    struct key *ids = calloc(n ? n : 1, sizeof(struct key));
    struct key *profiles = calloc(n ? n : 1, sizeof(struct key));
    int problems = 1;

    if (names != NULL && ids != NULL && profiles != NULL) {
        for (size_t i = 0; i < n; i++) {
            names[i] = ids[i] = (struct key){d->users[i].name, d->users[i].uid};
            if (d->users[i].profile != NULL)
                profiles[np++] = (struct key){d->users[i].profile, 0};
        }
        problems = report_dups(names, n, true, "user name", log) +
                   report_dups(ids, n, false, "uid", log) +
                   report_dups(profiles, np, true, "user profile", log);
    }
    free(names);
    free(ids);
    free(profiles);
    return problems;
}

static int check_unique_groups(const struct mp_cache_data *d, const mp_logger *log)
{
    size_t n = d->ngroups;
    struct key *names = calloc(n ? n : 1, sizeof(struct key));
    struct key *ids = calloc(n ? n : 1, sizeof(struct key));
    int problems = 1;

    if (names != NULL && ids != NULL) {
        for (size_t i = 0; i < n; i++)
            names[i] = ids[i] = (struct key){d->groups[i].name, d->groups[i].gid};
        problems =
            report_dups(names, n, true, "group name", log) + report_dups(ids, n, false, "gid", log);
    }
    free(names);
    free(ids);
    return problems;
}

int mp_cache_validate(const struct mp_cache_data *data, const mp_logger *log)
{
    int problems = 0;

    if ((data->nusers > 0 && data->users == NULL) || (data->ngroups > 0 && data->groups == NULL) ||
        (data->nreservations > 0 && data->reservations == NULL)) {
        mp_log(log, LOG_ERR, "cache: inconsistent data (count without array)");
        return 1;
    }
    for (size_t i = 0; i < data->nusers; i++)
        problems += check_user(&data->users[i], i, log);
    for (size_t i = 0; i < data->ngroups; i++)
        problems += check_group(&data->groups[i], i, log);
    if (problems != 0) /* the rest compares names: they must be valid first */
        return problems;
    problems += check_unique_users(data, log);
    problems += check_unique_groups(data, log);
    problems += check_reservations(data, log);
    return problems;
}
