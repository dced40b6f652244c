#include "testlib.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp_cache_reader.h"

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (q == NULL) {
        perror("realloc");
        abort();
    }
    return q;
}

static char *xstrdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

void td_user(struct mp_cache_data *d, const char *name, uint32_t uid, uint32_t gid,
             const char *gecos, const char *profile)
{
    struct mp_cache_user *u;
    char buf[128];

    d->users = xrealloc(d->users, (d->nusers + 1) * sizeof(*d->users));
    u = &d->users[d->nusers++];
    memset(u, 0, sizeof(*u));
    u->name = xstrdup(name);
    u->uid = uid;
    u->gid = gid;
    u->gecos = xstrdup(gecos);
    snprintf(buf, sizeof(buf), "/home/%s", name);
    u->home = xstrdup(buf);
    u->shell = xstrdup("/bin/bash");
    snprintf(buf, sizeof(buf), "%s@example.org", name);
    u->email = xstrdup(buf);
    if (profile == NULL) {
        snprintf(buf, sizeof(buf), "Practitioner/00000000-0000-4000-8000-%012u", (unsigned)uid);
        profile = buf;
    }
    u->profile = xstrdup(profile);
}

void td_group(struct mp_cache_data *d, const char *name, uint32_t gid, const char *members)
{
    struct mp_cache_group *g;
    char *list = xstrdup(members), *p = list, *m;

    d->groups = xrealloc(d->groups, (d->ngroups + 1) * sizeof(*d->groups));
    g = &d->groups[d->ngroups++];
    memset(g, 0, sizeof(*g));
    g->name = xstrdup(name);
    g->gid = gid;
    while (p != NULL && (m = strsep(&p, ",")) != NULL) {
        if (m[0] == '\0')
            continue;
        g->members = xrealloc(g->members, (g->nmembers + 1) * sizeof(char *));
        g->members[g->nmembers++] = xstrdup(m);
    }
    free(list);
}

void td_resv(struct mp_cache_data *d, const char *profile, uint32_t uid)
{
    d->reservations = xrealloc(d->reservations, (d->nreservations + 1) * sizeof(*d->reservations));
    d->reservations[d->nreservations].profile = xstrdup(profile);
    d->reservations[d->nreservations++].uid = uid;
}

void td_fixture(struct mp_cache_data *d)
{
    memset(d, 0, sizeof(*d));
    d->generated_at = 1700000000;
    td_user(d, "alice", 5001, 5001, "Alice Example", NULL);
    td_user(d, "bob", 5002, 5002, "Bob", NULL);
    td_user(d, "carol", 5003, 6000, NULL, NULL);
    d->users[0].admin = true;
    d->users[0].membership_id = xstrdup("11111111-2222-4333-8444-555555555555");
    td_group(d, "alice", 5001, "");
    td_group(d, "bob", 5002, "");
    td_group(d, "medstaff", 6000, "alice,bob,carol");
    td_group(d, "medadmin", 6001, "alice");
    for (size_t i = 0; i < d->nusers; i++)
        td_resv(d, d->users[i].profile, d->users[i].uid);
}

void td_generate(struct mp_cache_data *d, unsigned long n, FILE *pw, FILE *gr)
{
    char buf[128];
    struct mp_cache_group *staff;

    memset(d, 0, sizeof(*d));
    d->generated_at = 1700000000;
    d->users = xrealloc(NULL, (n + 1) * sizeof(*d->users));
    d->groups = xrealloc(NULL, (n + 1) * sizeof(*d->groups));
    d->reservations = xrealloc(NULL, (n + 1) * sizeof(*d->reservations));
    staff = &d->groups[d->ngroups++];
    *staff = (struct mp_cache_group){xstrdup("bulkstaff"), 99000,
                                     xrealloc(NULL, (n / 10 + 1) * sizeof(char *)), 0};
    for (unsigned long i = 0; i < n; i++) {
        struct mp_cache_user *u = &d->users[d->nusers++];
        memset(u, 0, sizeof(*u));
        snprintf(buf, sizeof(buf), "u%06lu", i);
        u->name = xstrdup(buf);
        u->uid = u->gid = (uint32_t)(100000 + i);
        snprintf(buf, sizeof(buf), "User %lu", i);
        u->gecos = xstrdup(buf);
        snprintf(buf, sizeof(buf), "/home/u%06lu", i);
        u->home = xstrdup(buf);
        u->shell = xstrdup("/bin/bash");
        snprintf(buf, sizeof(buf), "u%06lu@example.org", i);
        u->email = xstrdup(buf);
        snprintf(buf, sizeof(buf), "Practitioner/00000000-0000-4000-8000-%012lu", i);
        u->profile = xstrdup(buf);
        d->reservations[d->nreservations++] = (struct mp_cache_reservation){xstrdup(buf), u->uid};
        d->groups[d->ngroups++] = (struct mp_cache_group){xstrdup(u->name), u->gid, NULL, 0};
        if (i % 10 == 0)
            staff->members[staff->nmembers++] = xstrdup(u->name);
        if (pw != NULL)
            fprintf(pw, "%s:x:%u:%u:%s:%s:%s\n", u->name, (unsigned)u->uid, (unsigned)u->gid,
                    u->gecos, u->home, u->shell);
        if (gr != NULL)
            fprintf(gr, "%s:x:%u:\n", u->name, (unsigned)u->gid);
    }
}

static void stderr_emit(void *ctx, int prio, const char *msg)
{
    (void)ctx;
    (void)prio;
    fprintf(stderr, "writer: %s\n", msg);
}

void td_write(const char *dir, const struct mp_cache_data *d)
{
    mp_logger log = {stderr_emit, NULL, false};
    int lock;

    if (mp_cache_prepare_dir(dir, &log) != 0 || (lock = mp_cache_lock(dir, &log)) < 0) {
        fprintf(stderr, "td_write: cannot prepare %s\n", dir);
        abort();
    }
    if (mp_cache_write(dir, d, &log) != 0) {
        fprintf(stderr, "td_write: write failed\n");
        abort();
    }
    mp_cache_unlock(lock);
}

void td_write_raw(const char *dir, const void *buf, size_t len)
{
    char tmp[4096], path[4096];
    int fd;

    snprintf(tmp, sizeof(tmp), "%s/.raw.tmp", dir);
    snprintf(path, sizeof(path), "%s/%s", dir, MPC_FILE_NAME);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (len > 0 && write(fd, buf, len) != (ssize_t)len) || fchmod(fd, 0644) != 0 ||
        close(fd) != 0 || rename(tmp, path) != 0) {
        perror("td_write_raw");
        abort();
    }
}

uint8_t *td_read_raw(const char *dir, size_t *len)
{
    char path[4096];
    struct stat st;
    uint8_t *buf;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, MPC_FILE_NAME);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || (buf = malloc((size_t)st.st_size + 1)) == NULL ||
        read(fd, buf, (size_t)st.st_size) != st.st_size) {
        perror("td_read_raw");
        abort();
    }
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

uint32_t td_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void td_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void td_fix_crc(uint8_t *img, size_t len)
{
    if (len >= MPC_HEADER_SIZE)
        td_put32(img + MPC_H_CRC, mpc_crc32(img + MPC_CRC_START, len - MPC_CRC_START));
}

static void log_emit(void *ctx, int prio, const char *msg)
{
    struct td_log *l = ctx;
    size_t n = strlen(l->text);

    (void)prio;
    snprintf(l->text + n, sizeof(l->text) - n, "%s\n", msg);
}

void td_log_init(struct td_log *l)
{
    memset(l, 0, sizeof(*l));
    l->logger.emit = log_emit;
    l->logger.ctx = l;
    l->logger.debug = true;
}

int td_log_has(const struct td_log *l, const char *needle)
{
    return strstr(l->text, needle) != NULL;
}

char *td_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char path[4096];
    char *dir;

    snprintf(path, sizeof(path), "%s/%s.XXXXXX", base != NULL ? base : "/tmp", tag);
    dir = mkdtemp(path);
    if (dir == NULL) {
        perror("mkdtemp");
        abort();
    }
    chmod(dir, 0755);
    return strdup(dir);
}

void td_rmtree(const char *path)
{
    pid_t pid;

    if (path == NULL || path[0] != '/')
        return;
    pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
}

void td_child_exit(int code)
{
    char cmd[32];

    snprintf(cmd, sizeof(cmd), "exit %d", code);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(code);
}
