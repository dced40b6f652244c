/*
 * mp_state.h on top of mp_state_file.c.
 *
 * File format (text, so root can read it with cat; at most 4 KiB):
 *
 *   pam_medplum-state 1            first line, always
 *   <key> <value>                  one per line, values without spaces
 *
 * user-<name> keys: membership (unknown|active|inactive|absent),
 * membership_checked_at, last_online_login (unix seconds), mfa_user (0|1),
 * offline_failures, profile (Type/<id>), verifier (a crypt(3) string).
 * backoff keys: failures, first_failure, last_failure, until, reason (spaces
 * stored as '_').  Unknown keys are skipped (a newer writer may add some);
 * a bad header, a malformed value or a duplicate line makes the whole file
 * corrupt, and the caller then acts as if nothing were known, which is
 * never more permissive (see the account phase and offline login).
 */
#include "mp_state.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_secret.h"
#include "mp_state_file.h"
#include "mp_validate.h"

#define HEADER "pam_medplum-state 1"
#define USER_PREFIX "user-"
#define BACKOFF_FILE "backoff"
#define VERIFIER_MAX 384 /* CRYPT_OUTPUT_SIZE */

struct user_record {
    struct mp_user_state st;
    char verifier[VERIFIER_MAX];
};

const char *mp_membership_state_name(enum mp_membership_state state)
{
    switch (state) {
    case MP_MEMBERSHIP_UNKNOWN:
        return "unknown";
    case MP_MEMBERSHIP_ACTIVE:
        return "active";
    case MP_MEMBERSHIP_INACTIVE:
        return "inactive";
    case MP_MEMBERSHIP_ABSENT:
        return "absent";
    }
    return "unknown";
}

static bool parse_membership(const char *v, enum mp_membership_state *out)
{
    for (int s = MP_MEMBERSHIP_UNKNOWN; s <= MP_MEMBERSHIP_ABSENT; s++) {
        if (strcmp(v, mp_membership_state_name((enum mp_membership_state)s)) == 0) {
            *out = (enum mp_membership_state)s;
            return true;
        }
    }
    return false;
}

static bool parse_i64(const char *v, int64_t *out)
{
    char *end = NULL;
    long long n;

    if (!((v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1] >= '0' && v[1] <= '9')))
        return false;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = n;
    return true;
}

static bool parse_uint(const char *v, unsigned *out)
{
    int64_t n;

    if (!parse_i64(v, &n) || n < 0 || n > 1000000)
        return false;
    *out = (unsigned)n;
    return true;
}

static bool parse_bool01(const char *v, bool *out)
{
    if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
        return false;
    *out = v[0] == '1';
    return true;
}

/* crypt(3) output alphabet only: no way to smuggle a line break in. */
static bool valid_verifier(const char *v)
{
    size_t n = strlen(v);

    if (n < 4 || n >= VERIFIER_MAX || v[0] != '$')
        return false;
    return strspn(v, "$./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == n;
}

static bool valid_profile(const char *v)
{
    const char *slash = strchr(v, '/');

    return slash != NULL && slash > v && strlen(v) < sizeof(((struct mp_user_state *)0)->profile) &&
           mp_is_uuid(slash + 1) &&
           strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == (size_t)(slash - v);
}

static bool copy_checked(char *dst, size_t len, const char *v, bool (*valid)(const char *))
{
    if (!valid(v) || strlen(v) >= len)
        return false;
    strcpy(dst, v);
    return true;
}

static bool user_field(struct user_record *r, const char *k, const char *v)
{
    struct mp_user_state *s = &r->st;

    if (strcmp(k, "membership") == 0)
        return parse_membership(v, &s->membership);
    if (strcmp(k, "membership_checked_at") == 0)
        return parse_i64(v, &s->membership_checked_at);
    if (strcmp(k, "last_online_login") == 0)
        return parse_i64(v, &s->last_online_login);
    if (strcmp(k, "mfa_user") == 0)
        return parse_bool01(v, &s->mfa_user);
    if (strcmp(k, "offline_failures") == 0)
        return parse_uint(v, &s->offline_failures);
    if (strcmp(k, "profile") == 0)
        return copy_checked(s->profile, sizeof(s->profile), v, valid_profile);
    if (strcmp(k, "verifier") == 0)
        return (s->has_verifier =
                    copy_checked(r->verifier, sizeof(r->verifier), v, valid_verifier));
    return true; /* unknown key: written by a newer version */
}

static bool backoff_field(struct mp_backoff_state *b, const char *k, const char *v)
{
    if (strcmp(k, "failures") == 0)
        return parse_uint(v, &b->failures);
    if (strcmp(k, "first_failure") == 0)
        return parse_i64(v, &b->first_failure);
    if (strcmp(k, "last_failure") == 0)
        return parse_i64(v, &b->last_failure);
    if (strcmp(k, "until") == 0)
        return parse_i64(v, &b->until);
    if (strcmp(k, "reason") == 0) {
        snprintf(b->reason, sizeof(b->reason), "%s", v);
        for (char *p = b->reason; *p; p++)
            if (*p == '_')
                *p = ' ';
        return true;
    }
    return true;
}

/* Splits text into "key value" lines and hands each to field(); text is
 * modified in place.  Returns 0, or -1 when the file is corrupt. */
static int parse_lines(char *text, bool (*field)(void *obj, const char *k, const char *v),
                       void *obj)
{
    char *save = NULL, *line;
    char seen[16][32];
    size_t nseen = 0;

    line = strtok_r(text, "\n", &save);
    if (line == NULL || strcmp(line, HEADER) != 0)
        return -1;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        char *sp = strchr(line, ' ');

        if (sp == NULL || sp == line || sp[1] == '\0' || strchr(sp + 1, ' ') != NULL)
            return -1;
        *sp = '\0';
        for (size_t i = 0; i < nseen; i++)
            if (strcmp(seen[i], line) == 0)
                return -1;
        if (nseen < 16 && strlen(line) < sizeof(seen[0]))
            strcpy(seen[nseen++], line);
        if (!field(obj, line, sp + 1))
            return -1;
    }
    return 0;
}

static bool user_field_cb(void *obj, const char *k, const char *v)
{
    return user_field(obj, k, v);
}

static bool backoff_field_cb(void *obj, const char *k, const char *v)
{
    return backoff_field(obj, k, v);
}

static int user_file_name(const char *user, char *name, size_t len, const mp_logger *log)
{
    /* The name becomes a file name: only validated POSIX names qualify. */
    if (user == NULL || !mp_is_valid_username(user)) {
        mp_log(log, LOG_ERR, "state: refusing invalid user name");
        return -1;
    }
    snprintf(name, len, USER_PREFIX "%s", user);
    return 0;
}

/* Loads a record: 0 found, 1 none (zeroed), -1 unreadable or corrupt. */
static int load_user(int dfd, const char *name, struct user_record *r, const mp_logger *log)
{
    char *text = NULL;
    int rc;

    memset(r, 0, sizeof(*r));
    rc = mps_read(dfd, name, &text, log);
    if (rc != 0)
        return rc;
    rc = parse_lines(text, user_field_cb, r);
    mp_freezero(text, MPS_MAX_FILE + 1);
    if (rc != 0) {
        mp_log(log, LOG_ERR, "state: %s is corrupt; ignoring it", name);
        explicit_bzero(r, sizeof(*r));
        return -1;
    }
    return 0;
}

static int store_user(int dfd, const char *name, const struct user_record *r, const mp_logger *log)
{
    const struct mp_user_state *s = &r->st;
    char text[MPS_MAX_FILE];
    int n, rc;

    n = snprintf(text, sizeof(text),
                 HEADER "\nmembership %s\nmembership_checked_at %" PRId64
                        "\nlast_online_login %" PRId64 "\nmfa_user %d\noffline_failures %u\n"
                        "%s%s%s%s%s%s",
                 mp_membership_state_name(s->membership), s->membership_checked_at,
                 s->last_online_login, s->mfa_user ? 1 : 0, s->offline_failures,
                 s->profile[0] ? "profile " : "", s->profile, s->profile[0] ? "\n" : "",
                 s->has_verifier ? "verifier " : "", s->has_verifier ? r->verifier : "",
                 s->has_verifier ? "\n" : "");
    if (n < 0 || (size_t)n >= sizeof(text)) {
        explicit_bzero(text, sizeof(text));
        return -1;
    }
    rc = mps_write(dfd, name, text, (size_t)n, log);
    explicit_bzero(text, sizeof(text));
    return rc;
}

/* One locked read-modify-write of a user's record.  change() returns 1 to
 * write, 0 to leave the file alone, -1 on error; missing says whether a
 * user without a file is changed (a fresh record) or skipped (result 0). */
typedef int (*user_change_fn)(struct user_record *r, bool existed, void *ctx);

static int update_user(const char *cache_dir, const char *user, bool create, user_change_fn change,
                       void *ctx, const mp_logger *log)
{
    struct user_record *r = NULL;
    char name[64];
    int ret = -1, dfd = -1, lock = -1, rc;

    if (user_file_name(user, name, sizeof(name), log) != 0)
        return -1;
    dfd = mps_open_dir(cache_dir, create, log);
    if (dfd == -2) {
        ret = 0; /* nothing stored, nothing to change */
        goto out;
    }
    if (dfd < 0 || (lock = mps_lock(dfd, log)) < 0 || (r = malloc(sizeof(*r))) == NULL)
        goto out;
    rc = load_user(dfd, name, r, log);
    if (rc < 0) {
        memset(r, 0, sizeof(*r)); /* corrupt: start over (never more permissive) */
        rc = 1;
    }
    rc = change(r, rc == 0, ctx);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        ret = 0;
        goto out;
    }
    ret = store_user(dfd, name, r, log);
out:
    mps_unlock(lock);
    if (dfd >= 0)
        close(dfd);
    mp_freezero(r, sizeof(*r));
    return ret;
}

struct membership_change {
    enum mp_membership_state state;
    int64_t now;
};

static int change_membership(struct user_record *r, bool existed, void *ctx)
{
    const struct membership_change *c = ctx;

    (void)existed;
    r->st.membership = c->state;
    r->st.membership_checked_at = c->now;
    /* A revoked membership ends offline login at once, not at the TTL. */
    if (c->state == MP_MEMBERSHIP_INACTIVE || c->state == MP_MEMBERSHIP_ABSENT) {
        explicit_bzero(r->verifier, sizeof(r->verifier));
        r->st.has_verifier = false;
    }
    return 1;
}

int mp_state_set_membership(const char *cache_dir, const char *user, enum mp_membership_state state,
                            int64_t now, const mp_logger *log)
{
    struct membership_change c = {state, now};

    return update_user(cache_dir, user, true, change_membership, &c, log);
}

int mp_state_get_user(const char *cache_dir, const char *user, struct mp_user_state *out,
                      const mp_logger *log)
{
    struct user_record *r = NULL;
    char name[64];
    int ret = -1, dfd, rc;

    memset(out, 0, sizeof(*out));
    if (user_file_name(user, name, sizeof(name), log) != 0)
        return -1;
    dfd = mps_open_dir(cache_dir, false, log);
    if (dfd == -2)
        return 0;
    if (dfd < 0)
        return -1;
    r = malloc(sizeof(*r));
    if (r != NULL) {
        rc = load_user(dfd, name, r, log);
        if (rc >= 0) {
            *out = r->st;
            ret = 0;
        }
    }
    close(dfd);
    mp_freezero(r, sizeof(*r));
    return ret;
}

int mp_state_get_verifier(const char *cache_dir, const char *user, char **verifier,
                          const mp_logger *log)
{
    struct user_record *r = NULL;
    char name[64];
    int ret = -1, dfd, rc;

    *verifier = NULL;
    if (user_file_name(user, name, sizeof(name), log) != 0)
        return -1;
    dfd = mps_open_dir(cache_dir, false, log);
    if (dfd == -2)
        return 0;
    if (dfd < 0)
        return -1;
    r = malloc(sizeof(*r));
    if (r != NULL && (rc = load_user(dfd, name, r, log)) >= 0) {
        ret = 0;
        if (r->st.has_verifier && (*verifier = strdup(r->verifier)) == NULL)
            ret = -1;
    }
    close(dfd);
    mp_freezero(r, sizeof(*r));
    return ret;
}

struct login_change {
    const char *profile;
    const char *verifier;
    bool mfa_user;
    int64_t now;
};

static int set_verifier(struct user_record *r, const char *verifier)
{
    explicit_bzero(r->verifier, sizeof(r->verifier));
    r->st.has_verifier = false;
    if (verifier == NULL)
        return 0;
    if (!copy_checked(r->verifier, sizeof(r->verifier), verifier, valid_verifier))
        return -1;
    r->st.has_verifier = true;
    return 0;
}

static int change_login(struct user_record *r, bool existed, void *ctx)
{
    const struct login_change *c = ctx;
    struct mp_user_state *s = &r->st;

    (void)existed;
    s->membership = MP_MEMBERSHIP_ACTIVE;
    s->membership_checked_at = c->now;
    s->last_online_login = c->now;
    s->mfa_user = c->mfa_user;
    s->offline_failures = 0;
    if (c->profile != NULL &&
        !copy_checked(s->profile, sizeof(s->profile), c->profile, valid_profile))
        s->profile[0] = '\0';
    return set_verifier(r, c->verifier) == 0 ? 1 : -1;
}

int mp_state_record_login(const char *cache_dir, const char *user, const char *profile,
                          const char *verifier, bool mfa_user, int64_t now, const mp_logger *log)
{
    struct login_change c = {profile, verifier, mfa_user, now};

    return update_user(cache_dir, user, true, change_login, &c, log);
}

static int change_verifier(struct user_record *r, bool existed, void *ctx)
{
    if (!existed)
        return 0; /* no online login recorded: a verifier alone is useless */
    return set_verifier(r, ctx) == 0 ? 1 : -1;
}

int mp_state_set_verifier(const char *cache_dir, const char *user, const char *verifier,
                          const mp_logger *log)
{
    return update_user(cache_dir, user, false, change_verifier, (void *)verifier, log);
}

static int change_forget(struct user_record *r, bool existed, void *ctx)
{
    (void)ctx;
    if (!existed || !r->st.has_verifier)
        return 0;
    set_verifier(r, NULL);
    return 1;
}

int mp_state_forget_verifier(const char *cache_dir, const char *user, const mp_logger *log)
{
    return update_user(cache_dir, user, false, change_forget, NULL, log);
}

struct offline_begin {
    unsigned max_failures;
    int result;
};

static int change_offline_begin(struct user_record *r, bool existed, void *ctx)
{
    struct offline_begin *c = ctx;

    if (!existed || !r->st.has_verifier || r->st.offline_failures >= c->max_failures) {
        c->result = 1;
        return 0;
    }
    r->st.offline_failures++;
    c->result = 0;
    return 1;
}

int mp_state_offline_begin(const char *cache_dir, const char *user, unsigned max_failures,
                           const mp_logger *log)
{
    struct offline_begin c = {max_failures, 1};

    if (update_user(cache_dir, user, false, change_offline_begin, &c, log) != 0)
        return -1;
    return c.result;
}

static int change_offline_ok(struct user_record *r, bool existed, void *ctx)
{
    (void)ctx;
    if (!existed || r->st.offline_failures == 0)
        return 0;
    r->st.offline_failures = 0;
    return 1;
}

int mp_state_offline_succeeded(const char *cache_dir, const char *user, const mp_logger *log)
{
    return update_user(cache_dir, user, false, change_offline_ok, NULL, log);
}

int mp_state_purge_user(const char *cache_dir, const char *user, const mp_logger *log)
{
    char name[64];
    int ret = -1, dfd, lock = -1;

    if (user_file_name(user, name, sizeof(name), log) != 0)
        return -1;
    dfd = mps_open_dir(cache_dir, false, log);
    if (dfd == -2)
        return 0;
    if (dfd < 0)
        return -1;
    lock = mps_lock(dfd, log);
    if (lock >= 0)
        ret = mps_remove(dfd, name, log);
    mps_unlock(lock);
    close(dfd);
    return ret;
}

static bool purgeable(const char *name)
{
    return strncmp(name, USER_PREFIX, strlen(USER_PREFIX)) == 0 || strcmp(name, BACKOFF_FILE) == 0;
}

int mp_state_purge_all(const char *cache_dir, const mp_logger *log)
{
    int ret = -1, dfd, lock = -1, dup_fd = -1;
    DIR *d = NULL;
    struct dirent *e;

    dfd = mps_open_dir(cache_dir, false, log);
    if (dfd == -2)
        return 0;
    if (dfd < 0)
        return -1;
    lock = mps_lock(dfd, log);
    if (lock < 0 || (dup_fd = dup(dfd)) < 0 || (d = fdopendir(dup_fd)) == NULL)
        goto out;
    dup_fd = -1;
    ret = 0;
    while ((e = readdir(d)) != NULL)
        if (purgeable(e->d_name) && mps_remove(dfd, e->d_name, log) != 0)
            ret = -1;
out:
    if (d != NULL)
        closedir(d);
    if (dup_fd >= 0)
        close(dup_fd);
    mps_unlock(lock);
    close(dfd);
    return ret;
}

/* ---- backoff ------------------------------------------------------------- */

static int load_backoff(int dfd, struct mp_backoff_state *b, const mp_logger *log)
{
    char *text = NULL;
    int rc;

    memset(b, 0, sizeof(*b));
    rc = mps_read(dfd, BACKOFF_FILE, &text, log);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    rc = parse_lines(text, backoff_field_cb, b);
    mp_freezero(text, MPS_MAX_FILE + 1);
    if (rc != 0) {
        mp_log(log, LOG_ERR, "state: %s is corrupt; ignoring it", BACKOFF_FILE);
        memset(b, 0, sizeof(*b));
        return -1;
    }
    return 0;
}

static int store_backoff(int dfd, const struct mp_backoff_state *b, const mp_logger *log)
{
    char text[512], reason[sizeof(b->reason)];
    int n;

    if (b->failures == 0)
        return mps_remove(dfd, BACKOFF_FILE, log);
    snprintf(reason, sizeof(reason), "%s", b->reason[0] ? b->reason : "-");
    for (char *p = reason; *p; p++)
        if (*p == ' ' || (unsigned char)*p < 0x21 || *p == 0x7f)
            *p = '_';
    n = snprintf(text, sizeof(text),
                 HEADER "\nfailures %u\nfirst_failure %" PRId64 "\nlast_failure %" PRId64
                        "\nuntil %" PRId64 "\nreason %s\n",
                 b->failures, b->first_failure, b->last_failure, b->until, reason);
    if (n < 0 || (size_t)n >= sizeof(text))
        return -1;
    return mps_write(dfd, BACKOFF_FILE, text, (size_t)n, log);
}

int mp_state_get_backoff(const char *cache_dir, struct mp_backoff_state *out, const mp_logger *log)
{
    int dfd, rc;

    memset(out, 0, sizeof(*out));
    dfd = mps_open_dir(cache_dir, false, log);
    if (dfd == -2)
        return 0;
    if (dfd < 0)
        return -1;
    rc = load_backoff(dfd, out, log);
    close(dfd);
    return rc;
}

struct backoff_set {
    const struct mp_backoff_state *st;
};

static void replace_backoff(struct mp_backoff_state *st, void *ctx)
{
    *st = *((const struct backoff_set *)ctx)->st;
}

int mp_state_set_backoff(const char *cache_dir, const struct mp_backoff_state *st,
                         const mp_logger *log)
{
    struct backoff_set c = {st};

    return mp_state_update_backoff(cache_dir, replace_backoff, &c, log);
}

static void zero_backoff(struct mp_backoff_state *st, void *ctx)
{
    (void)ctx;
    memset(st, 0, sizeof(*st));
}

int mp_state_clear_backoff(const char *cache_dir, const mp_logger *log)
{
    return mp_state_update_backoff(cache_dir, zero_backoff, NULL, log);
}

static bool backoff_equal(const struct mp_backoff_state *a, const struct mp_backoff_state *b)
{
    return a->failures == b->failures && a->first_failure == b->first_failure &&
           a->last_failure == b->last_failure && a->until == b->until &&
           strcmp(a->reason, b->reason) == 0;
}

int mp_state_update_backoff(const char *cache_dir,
                            void (*update)(struct mp_backoff_state *st, void *ctx), void *ctx,
                            const mp_logger *log)
{
    struct mp_backoff_state b, before;
    int ret = -1, dfd, lock = -1;

    dfd = mps_open_dir(cache_dir, true, log);
    if (dfd < 0)
        return -1;
    lock = mps_lock(dfd, log);
    if (lock < 0)
        goto out;
    load_backoff(dfd, &b, log); /* corrupt: starts from zero */
    before = b;
    update(&b, ctx);
    if (backoff_equal(&before, &b)) {
        ret = 0; /* nothing changed: no write on every successful login */
        goto out;
    }
    ret = store_backoff(dfd, &b, log);
out:
    mps_unlock(lock);
    close(dfd);
    return ret;
}
