/*
 * Parsing of searchset Bundles into struct mp_directory (mp_directory.h).
 * Nothing in a page is trusted: every field is type-checked, an entry with a
 * wrong-typed field is counted as malformed and ignored (never guessed at),
 * and a page that is not a searchset Bundle fails the whole fetch.
 */
#include "mp_directory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_json.h"
#include "mp_validate.h"

static void free_idents(struct mp_dir_ident *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ids[i].system);
        free(ids[i].value);
    }
    free(ids);
}

static void free_entry(struct mp_dir_entry *e)
{
    free(e->practitioner_id);
    free(e->profile);
    free(e->membership_id);
    free(e->login_email);
    free(e->telecom_email);
    free(e->name);
    free(e->profile_display);
    free_idents(e->prac_ids, e->nprac_ids);
    free_idents(e->member_ids, e->nmember_ids);
    memset(e, 0, sizeof(*e));
}

void mp_directory_free(struct mp_directory *dir)
{
    if (dir == NULL)
        return;
    for (size_t i = 0; i < dir->nentries; i++)
        free_entry(&dir->entries[i]);
    for (size_t i = 0; i < dir->npracs; i++)
        free_entry(&dir->pracs[i]);
    free(dir->entries);
    free(dir->pracs);
    memset(dir, 0, sizeof(*dir));
}

const char *mp_dir_ident_find(const struct mp_dir_ident *ids, size_t n, const char *system)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i].system != NULL && strcmp(ids[i].system, system) == 0)
            return ids[i].value;
    return NULL;
}

static int dup_or_null(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst == NULL ? -1 : 0;
}

/* identifier: [{system, value}]; entries lacking either string are skipped
 * (FHIR allows them), a non-array is malformed. */
static int parse_idents(const cJSON *res, struct mp_dir_ident **out, size_t *n, bool *bad)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(res, "identifier");
    const cJSON *it;
    size_t cap;

    *out = NULL;
    *n = 0;
    if (arr == NULL)
        return 0;
    if (!cJSON_IsArray(arr)) {
        *bad = true;
        return 0;
    }
    cap = (size_t)cJSON_GetArraySize(arr);
    if (cap == 0)
        return 0;
    *out = calloc(cap, sizeof(**out));
    if (*out == NULL)
        return -1;
    cJSON_ArrayForEach(it, arr)
    {
        const char *system = cJSON_IsObject(it) ? mp_json_string(it, "system") : NULL;
        const char *value = cJSON_IsObject(it) ? mp_json_string(it, "value") : NULL;
        if (system == NULL || value == NULL)
            continue;
        if (dup_or_null(&(*out)[*n].system, system) != 0 ||
            dup_or_null(&(*out)[*n].value, value) != 0) {
            (*n)++;
            return -1;
        }
        (*n)++;
    }
    return 0;
}

/* Optional boolean: absent -> dflt; wrong type -> malformed. */
static bool opt_bool(const cJSON *res, const char *key, bool dflt, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, key);

    if (v == NULL)
        return dflt;
    if (!cJSON_IsBool(v)) {
        *bad = true;
        return false;
    }
    return cJSON_IsTrue(v);
}

/* "Practitioner/<uuid>" -> pointer to the uuid, or NULL. */
static const char *practitioner_ref_id(const char *ref)
{
    if (ref == NULL || strncmp(ref, "Practitioner/", 13) != 0 || !mp_is_uuid(ref + 13))
        return NULL;
    return ref + 13;
}

/* Appends the given name parts and the family name: "Alice B Smith". */
static char *format_name(const cJSON *name)
{
    const char *text = mp_json_string(name, "text");
    const cJSON *given = mp_json_array(name, "given");
    const char *family = mp_json_string(name, "family");
    const cJSON *g;
    size_t len = 1;
    char *out;

    if (text != NULL && text[0] != '\0')
        return strdup(text);
    cJSON_ArrayForEach(g, given) if (cJSON_IsString(g)) len += strlen(g->valuestring) + 1;
    if (family != NULL)
        len += strlen(family) + 1;
    out = calloc(1, len);
    if (out == NULL)
        return NULL;
    cJSON_ArrayForEach(g, given)
    {
        if (!cJSON_IsString(g) || g->valuestring[0] == '\0')
            continue;
        if (out[0] != '\0')
            strcat(out, " ");
        strcat(out, g->valuestring);
    }
    if (family != NULL && family[0] != '\0') {
        if (out[0] != '\0')
            strcat(out, " ");
        strcat(out, family);
    }
    return out;
}

/* First HumanName preferring use "official", then "usual", then the first. */
static const cJSON *pick_name(const cJSON *names)
{
    static const char *const order[] = {"official", "usual"};
    const cJSON *n;

    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        cJSON_ArrayForEach(n, names)
        {
            const char *use = cJSON_IsObject(n) ? mp_json_string(n, "use") : NULL;
            if (use != NULL && strcmp(use, order[k]) == 0)
                return n;
        }
    }
    cJSON_ArrayForEach(n, names) if (cJSON_IsObject(n)) return n;
    return NULL;
}

static const char *first_email(const cJSON *res)
{
    const cJSON *t;

    cJSON_ArrayForEach(t, mp_json_array(res, "telecom"))
    {
        const char *system = cJSON_IsObject(t) ? mp_json_string(t, "system") : NULL;
        const char *value = cJSON_IsObject(t) ? mp_json_string(t, "value") : NULL;
        if (system != NULL && value != NULL && strcmp(system, "email") == 0)
            return value;
    }
    return NULL;
}

/* Fills the Practitioner half of an entry. */
static int parse_practitioner(const cJSON *res, struct mp_dir_entry *e, bool *bad)
{
    const char *id = mp_json_string(res, "id");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(res, "name");
    const cJSON *name;
    char ref[64];

    if (id == NULL || !mp_is_uuid(id) || (names != NULL && !cJSON_IsArray(names)) ||
        (cJSON_GetObjectItemCaseSensitive(res, "telecom") != NULL &&
         mp_json_array(res, "telecom") == NULL)) {
        *bad = true;
        return 0;
    }
    snprintf(ref, sizeof(ref), "Practitioner/%s", id);
    e->practitioner_found = true;
    e->practitioner_inactive = !opt_bool(res, "active", true, bad);
    name = pick_name(names);
    if (dup_or_null(&e->practitioner_id, id) != 0 || dup_or_null(&e->profile, ref) != 0 ||
        dup_or_null(&e->telecom_email, first_email(res)) != 0)
        return -1;
    if (name != NULL && (e->name = format_name(name)) == NULL)
        return -1;
    return parse_idents(res, &e->prac_ids, &e->nprac_ids, bad);
}

static bool same_project(const struct mp_config *cfg, const char *ref)
{
    return ref != NULL && strncmp(ref, "Project/", 8) == 0 && strcmp(ref + 8, cfg->project_id) == 0;
}

/* Fills the membership half.  Returns 1 when the membership is not ours to
 * map (another project, a non-Practitioner profile). */
static int parse_membership(const struct mp_config *cfg, const cJSON *res, struct mp_dir_entry *e,
                            bool *bad)
{
    const char *id = mp_json_string(res, "id");
    const char *profile = mp_json_reference(res, "profile");
    const cJSON *user = mp_json_object(res, "user");
    const cJSON *pobj = mp_json_object(res, "profile");
    const char *display = user ? mp_json_string(user, "display") : NULL;
    const char *pid = practitioner_ref_id(profile);

    if (id == NULL || !mp_is_uuid(id)) {
        *bad = true;
        return 0;
    }
    if (!same_project(cfg, mp_json_reference(res, "project")) || pid == NULL)
        return 1;
    e->active = opt_bool(res, "active", true, bad);
    e->admin = opt_bool(res, "admin", false, bad);
    if (display != NULL && !mp_is_plausible_email(display))
        display = NULL;
    if (dup_or_null(&e->membership_id, id) != 0 || dup_or_null(&e->profile, profile) != 0 ||
        dup_or_null(&e->practitioner_id, pid) != 0 || dup_or_null(&e->login_email, display) != 0 ||
        dup_or_null(&e->profile_display, pobj ? mp_json_string(pobj, "display") : NULL) != 0)
        return -1;
    return parse_idents(res, &e->member_ids, &e->nmember_ids, bad);
}

static int grow(struct mp_dir_entry **arr, size_t n, size_t *cap)
{
    struct mp_dir_entry *grown;
    size_t ncap;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 64;
    grown = realloc(*arr, ncap * sizeof(**arr));
    if (grown == NULL)
        return -1;
    *arr = grown;
    *cap = ncap;
    return 0;
}

/* Pages repeat entries only at their edges (a cursor resuming at the last
 * millisecond), so looking back a few pages suffices and keeps this linear;
 * the mapping copes with any duplicate that slips through. */
#define SEEN_WINDOW (4 * MP_DIR_PAGE_SIZE)

static bool seen(const struct mp_dir_entry *arr, size_t n, bool by_membership, const char *id)
{
    size_t stop = n > SEEN_WINDOW ? n - SEEN_WINDOW : 0;

    for (size_t i = n; i-- > stop;) {
        const char *have = by_membership ? arr[i].membership_id : arr[i].practitioner_id;
        if (have != NULL && strcmp(have, id) == 0)
            return true;
    }
    return false;
}

/* One resource of a page.  Returns -1 on out of memory. */
static int add_resource(struct mp_directory *dir, const struct mp_config *cfg, const cJSON *res,
                        size_t *added, const mp_logger *log)
{
    const char *type = mp_json_string(res, "resourceType");
    const char *id = mp_json_string(res, "id");
    bool membership = type != NULL && strcmp(type, "ProjectMembership") == 0;
    bool practitioner = type != NULL && strcmp(type, "Practitioner") == 0;
    bool to_pracs = practitioner && dir->source == MP_DIR_SOURCE_MEMBERSHIPS;
    struct mp_dir_entry e;
    bool bad = false;
    int rc;

    if ((!membership && !practitioner) || id == NULL)
        return 0; /* OperationOutcome entries and the like */
    if (membership && dir->source != MP_DIR_SOURCE_MEMBERSHIPS)
        return 0;
    if (to_pracs ? seen(dir->pracs, dir->npracs, false, id)
                 : seen(dir->entries, dir->nentries, membership, id))
        return 0;
    memset(&e, 0, sizeof(e));
    e.active = true;
    rc = membership ? parse_membership(cfg, res, &e, &bad) : parse_practitioner(res, &e, &bad);
    if (rc < 0 || bad || rc == 1) {
        if (bad) {
            dir->malformed++;
            mp_log(log, LOG_WARNING,
                   "directory: %s %.64s has a field of the wrong type; "
                   "ignored",
                   type, id);
        }
        free_entry(&e);
        return rc < 0 ? -1 : 0;
    }
    if (to_pracs) {
        if (grow(&dir->pracs, dir->npracs, &dir->pracs_cap) != 0)
            goto oom;
        dir->pracs[dir->npracs++] = e;
        return 0;
    }
    if (grow(&dir->entries, dir->nentries, &dir->cap) != 0)
        goto oom;
    dir->entries[dir->nentries++] = e;
    (*added)++;
    return 0;
oom:
    free_entry(&e);
    return -1;
}

/* Bundle.link[relation=next].url, copied; *next stays NULL without one. */
static int next_link(const cJSON *bundle, char **next)
{
    const cJSON *l;

    cJSON_ArrayForEach(l, mp_json_array(bundle, "link"))
    {
        const char *rel = cJSON_IsObject(l) ? mp_json_string(l, "relation") : NULL;
        const char *url = cJSON_IsObject(l) ? mp_json_string(l, "url") : NULL;
        if (rel != NULL && url != NULL && strcmp(rel, "next") == 0 && url[0] != '\0') {
            *next = strdup(url);
            return *next == NULL ? -1 : 0;
        }
    }
    return 0;
}

int mp_directory_add_page(struct mp_directory *dir, const struct mp_config *cfg, const char *body,
                          size_t len, char **next, size_t *added, const mp_logger *log,
                          char *reason, size_t reason_len)
{
    cJSON *root = mp_json_parse_object(body, len);
    const char *type = root ? mp_json_string(root, "resourceType") : NULL;
    const cJSON *entries, *ent;
    int ret = -1;

    *next = NULL;
    *added = 0;
    if (type == NULL || strcmp(type, "Bundle") != 0) {
        snprintf(reason, reason_len, "search answer is not a FHIR Bundle");
        goto out;
    }
    entries = cJSON_GetObjectItemCaseSensitive(root, "entry");
    if (entries != NULL && !cJSON_IsArray(entries)) {
        snprintf(reason, reason_len, "Bundle.entry is not an array");
        goto out;
    }
    cJSON_ArrayForEach(ent, entries)
    {
        const cJSON *res = cJSON_IsObject(ent) ? mp_json_object(ent, "resource") : NULL;
        if (res == NULL) {
            dir->malformed++;
            continue;
        }
        if (add_resource(dir, cfg, res, added, log) != 0) {
            snprintf(reason, reason_len, "out of memory");
            goto out;
        }
    }
    if (next_link(root, next) != 0) {
        snprintf(reason, reason_len, "out of memory");
        goto out;
    }
    ret = 0;
out:
    cJSON_Delete(root);
    return ret;
}

static int cmp_prac(const void *a, const void *b)
{
    return strcmp(((const struct mp_dir_entry *)a)->practitioner_id,
                  ((const struct mp_dir_entry *)b)->practitioner_id);
}

/* Copies the Practitioner half of p into the membership entry e (two
 * memberships may share one Practitioner). */
static int copy_practitioner(struct mp_dir_entry *e, const struct mp_dir_entry *p)
{
    e->practitioner_found = true;
    e->practitioner_inactive = p->practitioner_inactive;
    if (dup_or_null(&e->telecom_email, p->telecom_email) != 0 ||
        dup_or_null(&e->name, p->name) != 0)
        return -1;
    if (p->nprac_ids == 0)
        return 0;
    e->prac_ids = calloc(p->nprac_ids, sizeof(*e->prac_ids));
    if (e->prac_ids == NULL)
        return -1;
    for (size_t i = 0; i < p->nprac_ids; i++) {
        e->nprac_ids++;
        if (dup_or_null(&e->prac_ids[i].system, p->prac_ids[i].system) != 0 ||
            dup_or_null(&e->prac_ids[i].value, p->prac_ids[i].value) != 0)
            return -1;
    }
    return 0;
}

int mp_directory_finish(struct mp_directory *dir)
{
    if (dir->source != MP_DIR_SOURCE_MEMBERSHIPS || dir->npracs == 0)
        return 0;
    qsort(dir->pracs, dir->npracs, sizeof(*dir->pracs), cmp_prac);
    for (size_t i = 0; i < dir->nentries; i++) {
        struct mp_dir_entry key = {.practitioner_id = dir->entries[i].practitioner_id};
        const struct mp_dir_entry *p =
            bsearch(&key, dir->pracs, dir->npracs, sizeof(*dir->pracs), cmp_prac);
        if (p != NULL && copy_practitioner(&dir->entries[i], p) != 0)
            return -1;
    }
    return 0;
}
