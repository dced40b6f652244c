/*
 * mp_cache_upsert_user: pam_medplum's one-user update after a login.
 *
 * Under the writer lock: load, refuse collisions with another Practitioner
 * (user name, uid, or a uid reserved for someone else), replace the entry of
 * the same Practitioner (matched by profile, so a renamed user keeps one
 * entry) or add it, keep its user-private group and uid reservation, write.
 */
#include "mp_cache.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mp_validate.h"

static bool same_str(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Entries of other Practitioners must keep their name and uid; a reserved
 * uid is never handed to anyone else. */
static int check_conflicts(const struct mp_cache_data *d, const struct mp_cache_user *u,
                           const mp_logger *log)
{
    for (size_t i = 0; i < d->nusers; i++) {
        const struct mp_cache_user *o = &d->users[i];
        if (same_str(o->profile, u->profile))
            continue;
        if (same_str(o->name, u->name) || o->uid == u->uid) {
            mp_log(log, LOG_ERR,
                   "cache: refusing %s (uid %u) for %s: %s already belongs to "
                   "%s",
                   u->name, (unsigned)u->uid, u->profile,
                   same_str(o->name, u->name) ? "the name" : "the uid",
                   o->profile != NULL ? o->profile : "another entry");
            return -1;
        }
    }
    for (size_t i = 0; i < d->nreservations; i++) {
        const struct mp_cache_reservation *r = &d->reservations[i];
        bool mine = same_str(r->profile, u->profile);
        if ((!mine && r->uid == u->uid) || (mine && r->uid != u->uid)) {
            mp_log(log, LOG_ERR, "cache: refusing %s for %s: uid %u is reserved for %s", u->name,
                   u->profile, (unsigned)r->uid, r->profile);
            return -1;
        }
    }
    return 0;
}

static int copy_user(struct mp_cache_user *dst, const struct mp_cache_user *src)
{
    const char *from[] = {src->name,  src->gecos,   src->home,         src->shell,
                          src->email, src->profile, src->membership_id};
    char **to[] = {&dst->name,  &dst->gecos,   &dst->home,         &dst->shell,
                   &dst->email, &dst->profile, &dst->membership_id};

    memset(dst, 0, sizeof(*dst));
    dst->uid = src->uid;
    dst->gid = src->gid;
    dst->admin = src->admin;
    for (size_t k = 0; k < sizeof(to) / sizeof(to[0]); k++) {
        if (from[k] != NULL && (*to[k] = strdup(from[k])) == NULL)
            return -1;
    }
    return 0;
}

static void free_user_fields(struct mp_cache_user *u)
{
    char *fields[] = {u->name, u->gecos, u->home, u->shell, u->email, u->profile, u->membership_id};

    for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
        free(fields[k]);
    memset(u, 0, sizeof(*u));
}

static struct mp_cache_group *group_by_gid(struct mp_cache_data *d, uint32_t gid)
{
    for (size_t i = 0; i < d->ngroups; i++)
        if (d->groups[i].gid == gid)
            return &d->groups[i];
    return NULL;
}

static struct mp_cache_group *group_by_name(struct mp_cache_data *d, const char *name)
{
    for (size_t i = 0; i < d->ngroups; i++)
        if (same_str(d->groups[i].name, name))
            return &d->groups[i];
    return NULL;
}

/* A rename carries the user's private group and memberships along. */
static int rename_user(struct mp_cache_data *d, const struct mp_cache_user *old,
                       const char *new_name)
{
    struct mp_cache_group *pg = group_by_gid(d, old->gid);

    if (old->gid == old->uid && pg != NULL && same_str(pg->name, old->name) &&
        group_by_name(d, new_name) == NULL) {
        char *n = strdup(new_name);
        if (n == NULL)
            return -1;
        free(pg->name);
        pg->name = n;
    }
    for (size_t i = 0; i < d->ngroups; i++) {
        for (size_t j = 0; j < d->groups[i].nmembers; j++) {
            char *n;
            if (!same_str(d->groups[i].members[j], old->name))
                continue;
            if ((n = strdup(new_name)) == NULL)
                return -1;
            free(d->groups[i].members[j]);
            d->groups[i].members[j] = n;
        }
    }
    return 0;
}

/* Replaces the entry of the same profile, or appends one. */
static int put_user(struct mp_cache_data *d, const struct mp_cache_user *u)
{
    struct mp_cache_user copy, *slot = NULL, *grown;

    for (size_t i = 0; i < d->nusers && slot == NULL; i++)
        if (same_str(d->users[i].profile, u->profile))
            slot = &d->users[i];
    if (copy_user(&copy, u) != 0)
        goto fail;
    if (slot != NULL) {
        if (!same_str(slot->name, u->name) && rename_user(d, slot, u->name) != 0)
            goto fail;
        free_user_fields(slot);
        *slot = copy;
        return 0;
    }
    grown = realloc(d->users, (d->nusers + 1) * sizeof(*d->users));
    if (grown == NULL)
        goto fail;
    d->users = grown;
    d->users[d->nusers++] = copy;
    return 0;
fail:
    free_user_fields(&copy);
    return -1;
}

static int ensure_private_group(struct mp_cache_data *d, const struct mp_cache_user *u,
                                const mp_logger *log)
{
    struct mp_cache_group *grown;
    char *name;

    if (u->gid != u->uid || group_by_gid(d, u->gid) != NULL)
        return 0;
    if (group_by_name(d, u->name) != NULL) {
        mp_log(log, LOG_ERR, "cache: refusing %s: a group of that name exists with another gid",
               u->name);
        return -1;
    }
    name = strdup(u->name);
    grown = name != NULL ? realloc(d->groups, (d->ngroups + 1) * sizeof(*d->groups)) : NULL;
    if (grown == NULL) {
        free(name);
        return -1;
    }
    d->groups = grown;
    d->groups[d->ngroups++] = (struct mp_cache_group){.name = name, .gid = u->gid};
    return 0;
}

static int ensure_reservation(struct mp_cache_data *d, const struct mp_cache_user *u)
{
    struct mp_cache_reservation *grown;
    char *profile;

    for (size_t i = 0; i < d->nreservations; i++)
        if (same_str(d->reservations[i].profile, u->profile))
            return 0; /* check_conflicts made sure its uid is u->uid */
    profile = strdup(u->profile);
    grown = profile != NULL
                ? realloc(d->reservations, (d->nreservations + 1) * sizeof(*d->reservations))
                : NULL;
    if (grown == NULL) {
        free(profile);
        return -1;
    }
    d->reservations = grown;
    d->reservations[d->nreservations++] = (struct mp_cache_reservation){profile, u->uid};
    return 0;
}

int mp_cache_upsert_user(const char *cache_dir, const struct mp_cache_user *user,
                         const mp_logger *log)
{
    int ret = -1, lock = -1;
    struct mp_cache_data data;

    memset(&data, 0, sizeof(data));
    if (user == NULL || !mp_is_valid_username(user->name) || user->profile == NULL ||
        user->profile[0] == '\0') {
        mp_log(log, LOG_ERR, "cache: upsert needs a valid user name and a profile");
        goto out;
    }
    if (mp_cache_prepare_dir(cache_dir, log) != 0)
        goto out;
    lock = mp_cache_lock(cache_dir, log);
    if (lock < 0 || mp_cache_load(cache_dir, &data, log) != 0)
        goto out;
    if (check_conflicts(&data, user, log) != 0)
        goto out;
    if (put_user(&data, user) != 0 || ensure_private_group(&data, user, log) != 0 ||
        ensure_reservation(&data, user) != 0) {
        mp_log(log, LOG_ERR, "cache: cannot update %s (out of memory?)", user->name);
        goto out;
    }
    data.generated_at = (int64_t)time(NULL);
    ret = mp_cache_write(cache_dir, &data, log);
out:
    mp_cache_unlock(lock);
    mp_cache_data_free(&data);
    return ret;
}
