/*
 * The local account files, read directly (fgetpwent_r/fgetgrent_r on the
 * files, never getpwnam): NSS would include nss_medplum itself.  Loaded once
 * per sync into sorted arrays, because every candidate name and uid is
 * checked against them.
 */
#include "mp_idmap.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct strv {
    char **v;
    size_t n, cap;
};

struct idv {
    uint32_t *v;
    size_t n, cap;
};

static int strv_add(struct strv *s, const char *str)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **grown = realloc(s->v, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        s->v = grown;
        s->cap = cap;
    }
    if ((s->v[s->n] = strdup(str)) == NULL)
        return -1;
    s->n++;
    return 0;
}

static int idv_add(struct idv *s, uint32_t id)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 128;
        uint32_t *grown = realloc(s->v, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        s->v = grown;
        s->cap = cap;
    }
    s->v[s->n++] = id;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_id(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Reads every entry of a passwd (is_group false) or group file. */
static int read_file(const char *path, bool is_group, struct strv *names, struct idv *ids,
                     const mp_logger *log)
{
    FILE *fp = fopen(path, "re");
    size_t buflen = 4096;
    char *buf = NULL;
    int ret = -1, rc = 0;

    if (fp == NULL) {
        mp_log(log, LOG_ERR, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if ((buf = malloc(buflen)) == NULL)
        goto out;
    for (;;) {
        struct passwd pw, *pwp = NULL;
        struct group gr, *grp = NULL;
        const char *name;
        uint32_t id;

        rc = is_group ? fgetgrent_r(fp, &gr, buf, buflen, &grp)
                      : fgetpwent_r(fp, &pw, buf, buflen, &pwp);
        if (rc == ERANGE && buflen < (1u << 24)) {
            /* glibc rewinds to the start of the entry on ERANGE. */
            char *grown = realloc(buf, buflen * 2);
            if (grown == NULL)
                goto out;
            buf = grown;
            buflen *= 2;
            continue;
        }
        if (rc != 0)
            break;
        name = is_group ? grp->gr_name : pwp->pw_name;
        id = is_group ? (uint32_t)grp->gr_gid : (uint32_t)pwp->pw_uid;
        if (strv_add(names, name) != 0 || idv_add(ids, id) != 0 ||
            (!is_group && idv_add(ids, (uint32_t)pwp->pw_gid) != 0))
            goto out;
    }
    if (rc != ENOENT) {
        mp_log(log, LOG_ERR, "%s: read error: %s", path, strerror(rc));
        goto out;
    }
    ret = 0;
out:
    if (ret != 0 && rc == 0)
        mp_log(log, LOG_ERR, "%s: out of memory", path);
    free(buf);
    fclose(fp);
    return ret;
}

int mp_localdb_load(struct mp_localdb *db, const char *passwd_path, const char *group_path,
                    const mp_logger *log)
{
    struct strv users = {0}, groups = {0};
    struct idv ids = {0};

    memset(db, 0, sizeof(*db));
    db->users = NULL;
    if (read_file(passwd_path, false, &users, &ids, log) != 0 ||
        read_file(group_path, true, &groups, &ids, log) != 0) {
        db->users = users.v;
        db->nusers = users.n;
        db->groups = groups.v;
        db->ngroups = groups.n;
        db->ids = ids.v;
        mp_localdb_free(db);
        return -1;
    }
    qsort(users.v, users.n, sizeof(char *), cmp_str);
    qsort(groups.v, groups.n, sizeof(char *), cmp_str);
    qsort(ids.v, ids.n, sizeof(uint32_t), cmp_id);
    *db = (struct mp_localdb){users.v, users.n, groups.v, groups.n, ids.v, ids.n};
    return 0;
}

static bool has_str(char **v, size_t n, const char *s)
{
    return n > 0 && s != NULL && bsearch(&s, v, n, sizeof(char *), cmp_str) != NULL;
}

bool mp_localdb_has_user(const struct mp_localdb *db, const char *name)
{
    return has_str(db->users, db->nusers, name);
}

bool mp_localdb_has_group(const struct mp_localdb *db, const char *name)
{
    return has_str(db->groups, db->ngroups, name);
}

bool mp_localdb_has_id(const struct mp_localdb *db, uint32_t id)
{
    return db->nids > 0 && bsearch(&id, db->ids, db->nids, sizeof(uint32_t), cmp_id) != NULL;
}

void mp_localdb_free(struct mp_localdb *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; i < db->nusers; i++)
        free(db->users[i]);
    for (size_t i = 0; i < db->ngroups; i++)
        free(db->groups[i]);
    free(db->users);
    free(db->groups);
    free(db->ids);
    memset(db, 0, sizeof(*db));
}

bool mp_group_file_has(const char *path, const char *group)
{
    struct mp_localdb db = {0};
    struct strv names = {0};
    struct idv ids = {0};
    bool found = false;

    if (read_file(path, true, &names, &ids, NULL) == 0) {
        for (size_t i = 0; i < names.n && !found; i++)
            found = strcmp(names.v[i], group) == 0;
    }
    db.groups = names.v;
    db.ngroups = names.n;
    db.ids = ids.v;
    mp_localdb_free(&db);
    return found;
}
