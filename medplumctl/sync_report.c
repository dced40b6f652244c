#include "sync_report.h"

#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "ctl.h"

enum change { ADDED, REMOVED, CHANGED };
static const char *const change_names[] = {"added", "removed", "changed"};

static bool same(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static const struct mp_cache_user *by_profile(const struct mp_cache_data *d, const char *profile)
{
    for (size_t i = 0; d != NULL && i < d->nusers; i++)
        if (same(d->users[i].profile, profile))
            return &d->users[i];
    return NULL;
}

static bool differs(const struct mp_cache_user *a, const struct mp_cache_user *b)
{
    return !same(a->name, b->name) || a->uid != b->uid || a->gid != b->gid ||
           !same(a->gecos, b->gecos) || !same(a->home, b->home) || !same(a->shell, b->shell) ||
           !same(a->email, b->email) || !same(a->membership_id, b->membership_id) ||
           a->admin != b->admin;
}

/* Calls fn for every added, removed or changed user (matched by profile). */
static void each_change(const struct sync_report *r,
                        void (*fn)(void *ctx, enum change what, const struct mp_cache_user *u,
                                   const struct mp_cache_user *was),
                        void *ctx)
{
    const struct mp_cache_data *nd = &r->mapped->data;

    for (size_t i = 0; i < nd->nusers; i++) {
        const struct mp_cache_user *was = by_profile(r->old, nd->users[i].profile);
        if (was == NULL)
            fn(ctx, ADDED, &nd->users[i], NULL);
        else if (differs(&nd->users[i], was))
            fn(ctx, CHANGED, &nd->users[i], was);
    }
    for (size_t i = 0; r->old != NULL && i < r->old->nusers; i++)
        if (by_profile(nd, r->old->users[i].profile) == NULL)
            fn(ctx, REMOVED, &r->old->users[i], NULL);
}

static const char *source_name(const struct mp_directory *dir)
{
    return dir->source == MP_DIR_SOURCE_MEMBERSHIPS ? "memberships" : "practitioners";
}

/* ---- text ---- */

static void text_change(void *ctx, enum change what, const struct mp_cache_user *u,
                        const struct mp_cache_user *was)
{
    (void)ctx;
    if (was != NULL && !same(was->name, u->name))
        printf("  %-8s %s (was %s), uid %u, %s\n", change_names[what], u->name, was->name,
               (unsigned)u->uid, u->profile);
    else
        printf("  %-8s %s, uid %u, %s%s\n", change_names[what], u->name, (unsigned)u->uid,
               u->profile, what == REMOVED ? " (uid stays reserved)" : "");
}

static void print_text(const struct sync_report *r)
{
    const struct mp_directory *dir = r->dir;
    const struct mp_idmap_result *m = r->mapped;

    if (dir != NULL) {
        printf("source: %s (%zu entries, %zu pages)%s\n",
               dir->source == MP_DIR_SOURCE_MEMBERSHIPS ? "ProjectMembership search"
                                                        : "Practitioner search",
               dir->nentries, dir->pages,
               dir->source == MP_DIR_SOURCE_MEMBERSHIPS ? ", membership state known"
                                                        : ", membership state unknown");
        if (dir->fallback_reason[0] != '\0')
            printf("note: %s\n", dir->fallback_reason);
    }
    if (m != NULL) {
        each_change(r, text_change, NULL);
        for (size_t i = 0; i < m->nskipped; i++)
            printf("  %-8s %s%s%s: %s\n", "skipped", m->skipped[i].profile,
                   m->skipped[i].name ? " as " : "", m->skipped[i].name ? m->skipped[i].name : "",
                   m->skipped[i].reason);
        printf("users: %zu, groups: %zu, reserved uids: %zu, inactive memberships: %zu, "
               "skipped: %zu\n",
               m->data.nusers, m->data.ngroups, m->data.nreservations, m->inactive, m->nskipped);
    }
    printf("sync %s%s%s%s\n", r->result, r->dry_run ? " (dry run: nothing written)" : "",
           r->message && r->message[0] ? ": " : "", r->message ? r->message : "");
}

/* ---- JSON ---- */

struct json_ctx {
    cJSON *lists[3];
    bool oom;
};

static void json_change(void *ctx, enum change what, const struct mp_cache_user *u,
                        const struct mp_cache_user *was)
{
    struct json_ctx *j = ctx;
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddStringToObject(o, "name", u->name) ||
        !cJSON_AddNumberToObject(o, "uid", u->uid) ||
        !cJSON_AddStringToObject(o, "profile", u->profile) ||
        (was != NULL && !same(was->name, u->name) &&
         !cJSON_AddStringToObject(o, "previous_name", was->name)) ||
        !cJSON_AddItemToArray(j->lists[what], o)) {
        cJSON_Delete(o);
        j->oom = true;
    }
}

static bool add_skipped(cJSON *root, const struct mp_idmap_result *m)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "skipped");

    for (size_t i = 0; arr != NULL && i < m->nskipped; i++) {
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddStringToObject(o, "profile", m->skipped[i].profile) ||
            (m->skipped[i].name && !cJSON_AddStringToObject(o, "name", m->skipped[i].name)) ||
            !cJSON_AddStringToObject(o, "reason", m->skipped[i].reason) ||
            !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            return false;
        }
    }
    return arr != NULL;
}

static bool add_mapping(cJSON *root, const struct sync_report *r)
{
    const struct mp_idmap_result *m = r->mapped;
    struct json_ctx j = {{NULL, NULL, NULL}, false};

    for (int k = 0; k < 3; k++)
        if ((j.lists[k] = cJSON_AddArrayToObject(root, change_names[k])) == NULL)
            return false;
    each_change(r, json_change, &j);
    return !j.oom && add_skipped(root, m) &&
           cJSON_AddNumberToObject(root, "users", (double)m->data.nusers) &&
           cJSON_AddNumberToObject(root, "groups", (double)m->data.ngroups) &&
           cJSON_AddNumberToObject(root, "reserved_uids", (double)m->data.nreservations) &&
           cJSON_AddNumberToObject(root, "inactive_memberships", (double)m->inactive);
}

static void print_json(const struct sync_report *r)
{
    cJSON *root = cJSON_CreateObject();
    const struct mp_directory *dir = r->dir;
    bool ok = root != NULL && cJSON_AddStringToObject(root, "result", r->result) &&
              cJSON_AddStringToObject(root, "message", r->message ? r->message : "") &&
              cJSON_AddBoolToObject(root, "dry_run", r->dry_run);

    if (ok && dir != NULL)
        ok = cJSON_AddStringToObject(root, "source", source_name(dir)) &&
             cJSON_AddBoolToObject(root, "membership_state_known",
                                   dir->source == MP_DIR_SOURCE_MEMBERSHIPS) &&
             cJSON_AddStringToObject(root, "fallback_reason", dir->fallback_reason) &&
             cJSON_AddNumberToObject(root, "entries", (double)dir->nentries) &&
             cJSON_AddNumberToObject(root, "pages", (double)dir->pages);
    if (ok && r->mapped != NULL)
        ok = add_mapping(root, r);
    if (!ok) {
        cJSON_Delete(root);
        fprintf(stderr, "medplumctl: out of memory\n");
        return;
    }
    ctl_print_json(root);
}

void sync_report_print(const struct sync_report *r, bool json)
{
    if (json)
        print_json(r);
    else
        print_text(r);
    fflush(stdout);
}
