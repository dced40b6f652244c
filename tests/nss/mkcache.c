/*
 * mkcache: builds a cache directory with the real writer (mp_cache.h), for
 * tests and the benchmark.
 *
 *   mkcache DIR [SPEC|-]          write DIR/accounts.db from a text spec
 *   mkcache --upsert DIR SPEC     mp_cache_upsert_user for each user line
 *   mkcache --generate N DIR [PASSWD GROUP]
 *                                 N synthetic users u000000.. (uid 100000+i,
 *                                 private groups, group "bulkstaff" with every
 *                                 tenth user); optionally the same entries in
 *                                 /etc/passwd and /etc/group format
 *
 * Spec lines (':'-separated like /etc/passwd; '#' comments; an empty
 * optional field is "absent"):
 *   user:NAME:UID:GID:GECOS:HOME:SHELL:EMAIL:PROFILE:MEMBERSHIP:ADMIN(0|1)
 *   group:NAME:GID:MEMBER,MEMBER,...
 *   resv:PROFILE:UID
 *   generated_at:UNIXTIME
 * Exit status 0 on success, 1 on a writer refusal, 2 on usage/spec errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mp_cache.h"
#include "testlib.h"

static const mp_logger logger = {mp_log_stderr_emit, "mkcache", false};

static char *opt(const char *s)
{
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    if (s == NULL || s[0] == '\0')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Splits line at ':' into at most max fields; returns the count. */
static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;

    while (n < max && line != NULL)
        f[n++] = strsep(&line, ":");
    return line == NULL ? n : max + 1;
}

static void *grow(void *p, size_t n, size_t elem)
{
    void *q = realloc(p, (n + 1) * elem);

    if (q == NULL) {
        perror("mkcache");
        exit(2);
    }
    return q;
}

static int add_user(struct mp_cache_data *d, char **f, size_t n)
{
    struct mp_cache_user u;

    memset(&u, 0, sizeof(u));
    if (n != 11 || parse_u32(f[2], &u.uid) != 0 || parse_u32(f[3], &u.gid) != 0)
        return -1;
    u.name = strdup(f[1]);
    u.gecos = opt(f[4]);
    u.home = opt(f[5]);
    u.shell = opt(f[6]);
    u.email = opt(f[7]);
    u.profile = opt(f[8]);
    u.membership_id = opt(f[9]);
    u.admin = strcmp(f[10], "1") == 0;
    d->users = grow(d->users, d->nusers, sizeof(*d->users));
    d->users[d->nusers++] = u;
    return 0;
}

static int add_group(struct mp_cache_data *d, char **f, size_t n)
{
    struct mp_cache_group g;
    char *list, *m;

    memset(&g, 0, sizeof(g));
    if (n != 4 || parse_u32(f[2], &g.gid) != 0)
        return -1;
    g.name = strdup(f[1]);
    list = f[3];
    while ((m = strsep(&list, ",")) != NULL) {
        if (m[0] == '\0')
            continue;
        g.members = grow(g.members, g.nmembers, sizeof(char *));
        g.members[g.nmembers++] = strdup(m);
    }
    d->groups = grow(d->groups, d->ngroups, sizeof(*d->groups));
    d->groups[d->ngroups++] = g;
    return 0;
}

static int add_resv(struct mp_cache_data *d, char **f, size_t n)
{
    struct mp_cache_reservation r = {NULL, 0};

    if (n != 3 || parse_u32(f[2], &r.uid) != 0)
        return -1;
    r.profile = strdup(f[1]);
    d->reservations = grow(d->reservations, d->nreservations, sizeof(*d->reservations));
    d->reservations[d->nreservations++] = r;
    return 0;
}

static int parse_line(struct mp_cache_data *d, char *line)
{
    char *f[13];
    size_t n;

    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '#' || line[0] == '\0')
        return 0;
    n = split(line, f, 12);
    if (strcmp(f[0], "user") == 0)
        return add_user(d, f, n);
    if (strcmp(f[0], "group") == 0)
        return add_group(d, f, n);
    if (strcmp(f[0], "resv") == 0)
        return add_resv(d, f, n);
    if (strcmp(f[0], "generated_at") == 0 && n == 2) {
        d->generated_at = strtoll(f[1], NULL, 10);
        return 0;
    }
    return -1;
}

static int parse_spec(const char *path, struct mp_cache_data *d)
{
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    char line[8192];
    int lineno = 0, ret = 0;

    if (fp == NULL) {
        perror(path);
        return -1;
    }
    d->generated_at = (int64_t)time(NULL);
    while (fgets(line, sizeof(line), fp) != NULL) {
        lineno++;
        if (parse_line(d, line) != 0) {
            fprintf(stderr, "%s:%d: malformed line\n", path, lineno);
            ret = -1;
        }
    }
    if (fp != stdin)
        fclose(fp);
    return ret;
}

static int write_locked(const char *dir, const struct mp_cache_data *d)
{
    int lock, ret;

    if (mp_cache_prepare_dir(dir, &logger) != 0)
        return -1;
    lock = mp_cache_lock(dir, &logger);
    if (lock < 0)
        return -1;
    ret = mp_cache_write(dir, d, &logger);
    mp_cache_unlock(lock);
    return ret;
}

static int usage(void)
{
    fprintf(stderr, "usage: mkcache DIR [SPEC|-]\n"
                    "       mkcache --upsert DIR SPEC\n"
                    "       mkcache --generate N DIR [PASSWD GROUP]\n");
    return 2;
}

static int main_generate(int argc, char **argv)
{
    struct mp_cache_data d;
    FILE *pw = NULL, *gr = NULL;
    int ret;

    if (argc != 4 && argc != 6)
        return usage();
    memset(&d, 0, sizeof(d));
    if (argc == 6 && ((pw = fopen(argv[4], "we")) == NULL || (gr = fopen(argv[5], "we")) == NULL)) {
        perror("mkcache");
        return 2;
    }
    td_generate(&d, strtoul(argv[2], NULL, 10), pw, gr);
    ret = write_locked(argv[3], &d) == 0 ? 0 : 1;
    if (pw != NULL)
        fclose(pw);
    if (gr != NULL)
        fclose(gr);
    mp_cache_data_free(&d);
    return ret;
}

static int main_upsert(const char *dir, const char *spec)
{
    struct mp_cache_data d;
    int ret = 0;

    memset(&d, 0, sizeof(d));
    if (parse_spec(spec, &d) != 0) {
        mp_cache_data_free(&d);
        return 2;
    }
    for (size_t i = 0; i < d.nusers && ret == 0; i++)
        if (mp_cache_upsert_user(dir, &d.users[i], &logger) != 0)
            ret = 1;
    mp_cache_data_free(&d);
    return ret;
}

int main(int argc, char **argv)
{
    struct mp_cache_data d;
    int ret;

    if (argc >= 2 && strcmp(argv[1], "--generate") == 0)
        return main_generate(argc, argv);
    if (argc == 4 && strcmp(argv[1], "--upsert") == 0)
        return main_upsert(argv[2], argv[3]);
    if (argc < 2 || argc > 3 || argv[1][0] == '-')
        return usage();
    memset(&d, 0, sizeof(d));
    if (parse_spec(argc == 3 ? argv[2] : "-", &d) != 0) {
        mp_cache_data_free(&d);
        return 2;
    }
    ret = write_locked(argv[1], &d) == 0 ? 0 : 1;
    mp_cache_data_free(&d);
    return ret;
}
