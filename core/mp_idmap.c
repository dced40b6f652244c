/*
 * mp_idmap_build: a fetched directory + the old cache + the local account
 * files -> the complete new cache content, the membership states to record
 * and the list of skipped entries with their reasons.  The rules are
 * described in mp_idmap.h; the single-value ones live in mp_idmap_rules.c.
 */
#include "mp_idmap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_validate.h"

struct cand {
    const struct mp_dir_entry *e;
    char name[MP_USERNAME_MAX + 1];
    const char *email;
    bool skip;
    uint32_t uid;
};

/* A set of taken ids: open addressing, never shrinks. */
struct idset {
    uint32_t *slot; /* 0 = empty (uid 0 is never handed out anyway) */
    size_t mask;
};

struct ctx {
    const struct mp_config *cfg;
    const struct mp_directory *dir;
    const struct mp_cache_data *old;
    const struct mp_localdb *local;
    const mp_logger *log;
    struct mp_idmap_result *res;
    struct cand *cands;
    size_t ncands;
    struct idset taken;
    const struct mp_cache_reservation **resv; /* old reservations sorted by profile */
    const struct mp_cache_user **olds;        /* old users sorted by profile */
    size_t nolds;
};

/* ---- small helpers ---- */

static int idset_init(struct idset *s, size_t want)
{
    size_t n = 64;

    while (n < want * 2)
        n *= 2;
    s->slot = calloc(n, sizeof(*s->slot));
    s->mask = n - 1;
    return s->slot ? 0 : -1;
}

static size_t idset_pos(const struct idset *s, uint32_t id)
{
    uint32_t x = id * 2654435761u;
    size_t i = x & s->mask;

    while (s->slot[i] != 0 && s->slot[i] != id)
        i = (i + 1) & s->mask;
    return i;
}

static bool idset_has(const struct idset *s, uint32_t id)
{
    return id != 0 && s->slot[idset_pos(s, id)] == id;
}

static void idset_add(struct idset *s, uint32_t id)
{
    if (id != 0)
        s->slot[idset_pos(s, id)] = id;
}

static bool same(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static int cmp_resv(const void *a, const void *b)
{
    return strcmp((*(const struct mp_cache_reservation *const *)a)->profile,
                  (*(const struct mp_cache_reservation *const *)b)->profile);
}

static int cmp_olduser(const void *a, const void *b)
{
    return strcmp((*(const struct mp_cache_user *const *)a)->profile,
                  (*(const struct mp_cache_user *const *)b)->profile);
}

static const struct mp_cache_reservation *reservation_of(const struct ctx *c, const char *profile)
{
    struct mp_cache_reservation key = {(char *)profile, 0}, *kp = &key;
    const struct mp_cache_reservation **r;

    if (c->old->nreservations == 0)
        return NULL;
    r = bsearch(&kp, c->resv, c->old->nreservations, sizeof(*c->resv), cmp_resv);
    return r ? *r : NULL;
}

static const struct mp_cache_user *old_user_of(const struct ctx *c, const char *profile)
{
    struct mp_cache_user key = {.profile = (char *)profile}, *kp = &key;
    const struct mp_cache_user **u;

    if (c->nolds == 0)
        return NULL;
    u = bsearch(&kp, c->olds, c->nolds, sizeof(*c->olds), cmp_olduser);
    return u ? *u : NULL;
}

static int add_skip(struct ctx *c, const char *profile, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int add_skip(struct ctx *c, const char *profile, const char *name, const char *fmt, ...)
{
    struct mp_idmap_result *r = c->res;
    struct mp_idmap_skip *grown, *s;
    va_list ap;

    grown = realloc(r->skipped, (r->nskipped + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    r->skipped = grown;
    s = &r->skipped[r->nskipped++];
    memset(s, 0, sizeof(*s));
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
    va_end(ap);
    s->profile = strdup(profile ? profile : "");
    s->name = name && name[0] ? strdup(name) : NULL;
    mp_log(c->log, LOG_WARNING, "sync: skipping %s%s%s: %s", profile ? profile : "?",
           name && name[0] ? " as " : "", name && name[0] ? name : "", s->reason);
    return s->profile == NULL ? -1 : 0;
}

static int add_state(struct ctx *c, const char *name, enum mp_membership_state st)
{
    struct mp_idmap_result *r = c->res;
    struct mp_idmap_state *grown;

    for (size_t i = 0; i < r->nstates; i++)
        if (strcmp(r->states[i].name, name) == 0)
            return 0; /* the first state learned for a name wins */
    grown = realloc(r->states, (r->nstates + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    r->states = grown;
    r->states[r->nstates].name = strdup(name);
    r->states[r->nstates].state = st;
    return r->states[r->nstates++].name ? 0 : -1;
}

/* ---- step 1: candidates ---- */

static int cmp_entry(const void *a, const void *b)
{
    const struct mp_dir_entry *x = *(const struct mp_dir_entry *const *)a;
    const struct mp_dir_entry *y = *(const struct mp_dir_entry *const *)b;
    int d = strcmp(x->practitioner_id, y->practitioner_id);

    if (d != 0)
        return d;
    return strcmp(x->membership_id ? x->membership_id : "",
                  y->membership_id ? y->membership_id : "");
}

/* Name an inactive member had or would have, for its membership state. */
static int record_inactive(struct ctx *c, const struct mp_dir_entry *e)
{
    const struct mp_cache_user *u = old_user_of(c, e->profile);
    char name[MP_USERNAME_MAX + 1], why[160];

    c->res->inactive++;
    mp_log(c->log, LOG_INFO, "sync: %s: membership inactive, no account", e->profile);
    if (u != NULL)
        return add_state(c, u->name, MP_MEMBERSHIP_INACTIVE);
    if (mp_idmap_username(c->cfg, e, name, sizeof(name), why, sizeof(why)) == 0)
        return add_state(c, name, MP_MEMBERSHIP_INACTIVE);
    return 0;
}

/* Decides whether one entry is a candidate; fills cand on success. */
static int consider(struct ctx *c, const struct mp_dir_entry *e, struct cand *cand)
{
    char why[160];

    memset(cand, 0, sizeof(*cand));
    cand->e = e;
    cand->skip = true;
    if (!e->active)
        return record_inactive(c, e);
    if (e->practitioner_inactive)
        return add_skip(c, e->profile, NULL, "Practitioner is marked active: false");
    if (mp_idmap_username(c->cfg, e, cand->name, sizeof(cand->name), why, sizeof(why)) != 0)
        return add_skip(c, e->profile, NULL, "%s", why);
    cand->email = e->login_email ? e->login_email : e->telecom_email;
    if (cand->email == NULL || !mp_is_plausible_email(cand->email))
        return add_skip(c, e->profile, cand->name, "no usable login email");
    if (mp_localdb_has_user(c->local, cand->name) || mp_localdb_has_group(c->local, cand->name))
        return add_skip(c, e->profile, cand->name, "the name exists in the local %s file",
                        mp_localdb_has_user(c->local, cand->name) ? "passwd" : "group");
    if (same(cand->name, c->cfg->admin_group) ||
        (strcmp(c->cfg->primary_group, "private") != 0 && same(cand->name, c->cfg->primary_group)))
        return add_skip(c, e->profile, cand->name, "the name is a configured group name");
    cand->skip = false;
    return 0;
}

static int collect(struct ctx *c)
{
    const struct mp_directory *d = c->dir;
    const struct mp_dir_entry **order = calloc(d->nentries ? d->nentries : 1, sizeof(*order));
    int ret = -1;

    c->cands = calloc(d->nentries ? d->nentries : 1, sizeof(*c->cands));
    if (order == NULL || c->cands == NULL)
        goto out;
    for (size_t i = 0; i < d->nentries; i++)
        order[i] = &d->entries[i];
    /* Practitioner-id order makes every later tie-break the same everywhere. */
    qsort(order, d->nentries, sizeof(*order), cmp_entry);
    for (size_t i = 0; i < d->nentries; i++) {
        if (i > 0 && same(order[i]->profile, order[i - 1]->profile)) {
            mp_log(c->log, LOG_WARNING, "sync: %s has several memberships; using the first",
                   order[i]->profile);
            continue;
        }
        if (consider(c, order[i], &c->cands[c->ncands]) != 0)
            goto out;
        c->ncands++;
    }
    ret = 0;
out:
    free(order);
    return ret;
}

/* ---- step 2: names claimed by several Practitioners ---- */

static int cmp_cand_name(const void *a, const void *b)
{
    return strcmp((*(struct cand *const *)a)->name, (*(struct cand *const *)b)->name);
}

/* One run of equal names [from, to): the current holder keeps it, if any. */
static int settle_name(struct ctx *c, struct cand **v, size_t from, size_t to)
{
    struct cand *holder = NULL;

    for (size_t i = from; i < to; i++) {
        const struct mp_cache_user *u = old_user_of(c, v[i]->e->profile);
        if (u != NULL && same(u->name, v[i]->name))
            holder = v[i];
    }
    for (size_t i = from; i < to; i++) {
        if (v[i] == holder)
            continue;
        v[i]->skip = true;
        if (add_skip(c, v[i]->e->profile, v[i]->name, "%zu Practitioners map to this name%s",
                     to - from, holder ? "; it stays with its current holder" : "") != 0)
            return -1;
    }
    return 0;
}

static int settle_names(struct ctx *c)
{
    struct cand **v = calloc(c->ncands ? c->ncands : 1, sizeof(*v));
    size_t n = 0;
    int ret = 0;

    if (v == NULL)
        return -1;
    for (size_t i = 0; i < c->ncands; i++)
        if (!c->cands[i].skip)
            v[n++] = &c->cands[i];
    qsort(v, n, sizeof(*v), cmp_cand_name);
    for (size_t i = 0; i < n && ret == 0;) {
        size_t j = i + 1;
        while (j < n && strcmp(v[j]->name, v[i]->name) == 0)
            j++;
        if (j - i > 1)
            ret = settle_name(c, v, i, j);
        i = j;
    }
    free(v);
    return ret;
}

/* ---- step 3: uids ---- */

static bool uid_free(const struct ctx *c, uint32_t uid)
{
    return uid != 0 && uid != 65534 && uid != 65535 && uid != UINT32_MAX &&
           !idset_has(&c->taken, uid) && !mp_localdb_has_id(c->local, uid);
}

static int pinned_uid(const struct ctx *c, const struct mp_dir_entry *e, uint32_t *uid, char *why,
                      size_t why_len)
{
    const char *system = c->cfg->uid_source + strlen("identifier:");
    const char *v = mp_dir_ident_find(e->prac_ids, e->nprac_ids, system);
    unsigned long n = 0;

    if (v == NULL)
        v = mp_dir_ident_find(e->member_ids, e->nmember_ids, system);
    if (v == NULL) {
        snprintf(why, why_len, "no identifier with system %.80s", system);
        return -1;
    }
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9' || n > UINT32_MAX / 10) {
            snprintf(why, why_len, "uid identifier \"%.20s\" is not a number", v);
            return -1;
        }
        n = n * 10 + (unsigned long)(*p - '0');
    }
    if (v[0] == '\0' || n < c->cfg->uid_min || n > c->cfg->uid_max) {
        snprintf(why, why_len, "pinned uid %.20s is outside uid_min..uid_max", v);
        return -1;
    }
    *uid = (uint32_t)n;
    return 0;
}

static int hashed_uid(const struct ctx *c, const struct mp_dir_entry *e, uint32_t *uid)
{
    uint64_t n = (uint64_t)c->cfg->uid_max - c->cfg->uid_min + 1;

    for (uint64_t k = 0; k < n; k++) {
        uint32_t u = mp_idmap_uid_probe(e->practitioner_id, (uint32_t)c->cfg->uid_min,
                                        (uint32_t)c->cfg->uid_max, k);
        if (uid_free(c, u)) {
            *uid = u;
            return 0;
        }
    }
    return -1;
}

/* Pass 0: reserved uids; pass 1: pinned; pass 2: hashed. */
static int assign_pass(struct ctx *c, int pass)
{
    bool pin_mode = strncmp(c->cfg->uid_source, "identifier:", 11) == 0;
    char why[160];

    for (size_t i = 0; i < c->ncands; i++) {
        struct cand *k = &c->cands[i];
        const struct mp_cache_reservation *r;
        uint32_t uid = 0;

        if (k->skip || k->uid != 0)
            continue;
        r = reservation_of(c, k->e->profile);
        if (pass == 0 && r != NULL) {
            if (mp_localdb_has_id(c->local, r->uid)) {
                k->skip = true;
                if (add_skip(c, k->e->profile, k->name,
                             "its reserved uid %u is now used by a "
                             "local account or group",
                             (unsigned)r->uid) != 0)
                    return -1;
                continue;
            }
            k->uid = r->uid; /* already in `taken` */
            if (pin_mode && pinned_uid(c, k->e, &uid, why, sizeof(why)) == 0 && uid != r->uid)
                mp_log(c->log, LOG_WARNING,
                       "sync: %s keeps its reserved uid %u, not the pinned "
                       "%u (files on disk belong to the reserved one)",
                       k->name, (unsigned)r->uid, (unsigned)uid);
            continue;
        }
        if (pass == 0 || r != NULL || (pass == 1) != pin_mode)
            continue;
        if (pass == 1 && pinned_uid(c, k->e, &uid, why, sizeof(why)) != 0) {
            k->skip = true;
        } else if (pass == 1 && !uid_free(c, uid)) {
            snprintf(why, sizeof(why), "pinned uid %u is taken", (unsigned)uid);
            k->skip = true;
        } else if (pass == 2 && hashed_uid(c, k->e, &uid) != 0) {
            snprintf(why, sizeof(why), "no free uid left in uid_min..uid_max");
            k->skip = true;
        }
        if (k->skip) {
            if (add_skip(c, k->e->profile, k->name, "%s", why) != 0)
                return -1;
            continue;
        }
        k->uid = uid;
        idset_add(&c->taken, uid);
    }
    return 0;
}

static int assign_uids(struct ctx *c)
{
    if (idset_init(&c->taken, c->old->nreservations + c->ncands + 8) != 0)
        return -1;
    for (size_t i = 0; i < c->old->nreservations; i++)
        idset_add(&c->taken, c->old->reservations[i].uid);
    if (strcmp(c->cfg->primary_group, "private") != 0)
        idset_add(&c->taken, (uint32_t)c->cfg->primary_gid);
    if (c->cfg->admin_group != NULL)
        idset_add(&c->taken, (uint32_t)c->cfg->admin_gid);
    for (int pass = 0; pass < 3; pass++)
        if (assign_pass(c, pass) != 0)
            return -1;
    return 0;
}

/* ---- step 4: the new cache content ---- */

static int fill_user(const struct ctx *c, const struct cand *k, struct mp_cache_user *u)
{
    const struct mp_dir_entry *e = k->e;
    bool private_group = strcmp(c->cfg->primary_group, "private") == 0;
    char gecos[MP_GECOS_MAX + 1], home[4096];

    mp_idmap_gecos(e->name && e->name[0] ? e->name : e->profile_display, gecos, sizeof(gecos));
    if (mp_idmap_home(c->cfg->home_template, k->name, home, sizeof(home)) != 0)
        return -1;
    u->uid = k->uid;
    u->gid = private_group ? k->uid : (uint32_t)c->cfg->primary_gid;
    u->admin = e->admin;
    u->name = strdup(k->name);
    u->gecos = strdup(gecos);
    u->home = strdup(home);
    u->shell = strdup(c->cfg->shell);
    u->email = strdup(k->email);
    u->profile = strdup(e->profile);
    u->membership_id = e->membership_id ? strdup(e->membership_id) : NULL;
    return (u->name && u->gecos && u->home && u->shell && u->email && u->profile &&
            (e->membership_id == NULL || u->membership_id))
               ? 0
               : -1;
}

static struct mp_cache_group *new_group(struct mp_cache_data *d, const char *name, uint32_t gid)
{
    struct mp_cache_group *g = &d->groups[d->ngroups];

    memset(g, 0, sizeof(*g));
    g->gid = gid;
    if ((g->name = strdup(name)) == NULL)
        return NULL;
    d->ngroups++;
    return g;
}

/* A shared group is emitted unless the local group file has the name (the
 * local one then serves, if its gid matches) or its gid. */
static bool shared_group_ok(const struct ctx *c, const char *name, uint32_t gid)
{
    if (mp_localdb_has_group(c->local, name)) {
        mp_log(c->log, LOG_WARNING,
               "sync: group %s exists in the local group file; not "
               "emitting it (make sure its gid is %u)",
               name, (unsigned)gid);
        return false;
    }
    if (mp_localdb_has_id(c->local, gid)) {
        mp_log(c->log, LOG_WARNING,
               "sync: gid %u of group %s is used by a local account or "
               "group; not emitting the group",
               (unsigned)gid, name);
        return false;
    }
    return true;
}

static int add_admin_members(const struct ctx *c, struct mp_cache_group *g)
{
    const struct mp_cache_data *d = &c->res->data;

    g->members = calloc(d->nusers ? d->nusers : 1, sizeof(*g->members));
    if (g->members == NULL)
        return -1;
    for (size_t i = 0; i < d->nusers; i++) {
        if (!d->users[i].admin)
            continue;
        if ((g->members[g->nmembers] = strdup(d->users[i].name)) == NULL)
            return -1;
        g->nmembers++;
    }
    return 0;
}

static int build_groups(struct ctx *c)
{
    struct mp_cache_data *d = &c->res->data;
    const struct mp_config *cfg = c->cfg;
    bool private_group = strcmp(cfg->primary_group, "private") == 0;
    struct mp_cache_group *g;

    d->groups = calloc(d->nusers + 3, sizeof(*d->groups));
    if (d->groups == NULL)
        return -1;
    for (size_t i = 0; private_group && i < d->nusers; i++)
        if (new_group(d, d->users[i].name, d->users[i].uid) == NULL)
            return -1;
    if (!private_group && shared_group_ok(c, cfg->primary_group, (uint32_t)cfg->primary_gid) &&
        new_group(d, cfg->primary_group, (uint32_t)cfg->primary_gid) == NULL)
        return -1;
    if (cfg->admin_group != NULL &&
        shared_group_ok(c, cfg->admin_group, (uint32_t)cfg->admin_gid)) {
        if ((g = new_group(d, cfg->admin_group, (uint32_t)cfg->admin_gid)) == NULL ||
            add_admin_members(c, g) != 0)
            return -1;
        if (c->dir->source != MP_DIR_SOURCE_MEMBERSHIPS)
            mp_log(c->log, LOG_INFO,
                   "sync: admin flags are unknown with the Practitioner "
                   "source; group %s has no members",
                   cfg->admin_group);
    }
    return 0;
}

/* Every old reservation stays; new users add theirs. */
static int build_reservations(struct ctx *c)
{
    struct mp_cache_data *d = &c->res->data;
    size_t max = c->old->nreservations + d->nusers;

    d->reservations = calloc(max ? max : 1, sizeof(*d->reservations));
    if (d->reservations == NULL)
        return -1;
    for (size_t i = 0; i < c->old->nreservations; i++) {
        d->reservations[d->nreservations].uid = c->old->reservations[i].uid;
        if ((d->reservations[d->nreservations].profile = strdup(c->old->reservations[i].profile)) ==
            NULL)
            return -1;
        d->nreservations++;
    }
    for (size_t i = 0; i < d->nusers; i++) {
        if (reservation_of(c, d->users[i].profile) != NULL)
            continue;
        d->reservations[d->nreservations].uid = d->users[i].uid;
        if ((d->reservations[d->nreservations].profile = strdup(d->users[i].profile)) == NULL)
            return -1;
        d->nreservations++;
    }
    return 0;
}

static int cmp_user_name(const void *a, const void *b)
{
    return strcmp(((const struct mp_cache_user *)a)->name, ((const struct mp_cache_user *)b)->name);
}

static int build_users(struct ctx *c)
{
    struct mp_cache_data *d = &c->res->data;
    bool known = c->dir->source == MP_DIR_SOURCE_MEMBERSHIPS;

    d->users = calloc(c->ncands ? c->ncands : 1, sizeof(*d->users));
    if (d->users == NULL)
        return -1;
    for (size_t i = 0; i < c->ncands; i++) {
        const struct cand *k = &c->cands[i];
        if (k->skip)
            continue;
        d->nusers++;
        if (fill_user(c, k, &d->users[d->nusers - 1]) != 0)
            return -1;
        if (known && add_state(c, k->name, MP_MEMBERSHIP_ACTIVE) != 0)
            return -1;
    }
    /* Name order: stable output for `cache list` and diffs. */
    qsort(d->users, d->nusers, sizeof(*d->users), cmp_user_name);
    return 0;
}

/* Cached users whose Practitioner is no longer in the directory at all. */
static int record_departed(struct ctx *c)
{
    for (size_t i = 0; i < c->old->nusers; i++) {
        const struct mp_cache_user *u = &c->old->users[i];
        bool present = false;

        for (size_t j = 0; j < c->ncands && !present; j++)
            present = same(c->cands[j].e->profile, u->profile);
        if (present)
            continue;
        mp_log(c->log, LOG_INFO,
               "sync: %s (%s) left the project directory; removed, uid %u "
               "stays reserved",
               u->name, u->profile ? u->profile : "no profile", (unsigned)u->uid);
        if (c->dir->source == MP_DIR_SOURCE_MEMBERSHIPS &&
            add_state(c, u->name, MP_MEMBERSHIP_ABSENT) != 0)
            return -1;
    }
    return 0;
}

static int index_old(struct ctx *c)
{
    const struct mp_cache_data *o = c->old;

    c->resv = calloc(o->nreservations ? o->nreservations : 1, sizeof(*c->resv));
    c->olds = calloc(o->nusers ? o->nusers : 1, sizeof(*c->olds));
    if (c->resv == NULL || c->olds == NULL)
        return -1;
    for (size_t i = 0; i < o->nreservations; i++)
        c->resv[i] = &o->reservations[i];
    for (size_t i = 0; i < o->nusers; i++)
        if (o->users[i].profile != NULL)
            c->olds[c->nolds++] = &o->users[i];
    qsort(c->resv, o->nreservations, sizeof(*c->resv), cmp_resv);
    qsort(c->olds, c->nolds, sizeof(*c->olds), cmp_olduser);
    return 0;
}

int mp_idmap_build(const struct mp_config *cfg, const struct mp_directory *dir,
                   const struct mp_cache_data *old, const struct mp_localdb *local, int64_t now,
                   struct mp_idmap_result *out, const mp_logger *log)
{
    struct ctx c = {cfg, dir, old, local, log, out, NULL, 0, {NULL, 0}, NULL, NULL, 0};
    int ret = -1;

    memset(out, 0, sizeof(*out));
    out->data.generated_at = now;
    if (index_old(&c) != 0 || collect(&c) != 0 || settle_names(&c) != 0 || assign_uids(&c) != 0 ||
        build_users(&c) != 0 || build_groups(&c) != 0 || build_reservations(&c) != 0 ||
        record_departed(&c) != 0) {
        mp_log(log, LOG_ERR, "sync: out of memory while mapping the directory");
        goto out;
    }
    ret = 0;
out:
    if (ret != 0)
        mp_idmap_result_free(out);
    free(c.cands);
    free(c.taken.slot);
    free(c.resv);
    free(c.olds);
    return ret;
}

void mp_idmap_result_free(struct mp_idmap_result *res)
{
    if (res == NULL)
        return;
    mp_cache_data_free(&res->data);
    for (size_t i = 0; i < res->nskipped; i++) {
        free(res->skipped[i].profile);
        free(res->skipped[i].name);
    }
    for (size_t i = 0; i < res->nstates; i++)
        free(res->states[i].name);
    free(res->skipped);
    free(res->states);
    memset(res, 0, sizeof(*res));
}
