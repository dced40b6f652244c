/*
 * Cache writer tests (mp_cache.h): round trip, validation refusals, modes
 * and ownership of the directory and files, failed writes keeping the old
 * cache, atomic replacement seen by a concurrent reader, upsert semantics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "mp_cache.h"
#include "mp_cache_reader.h"
#include "testlib.h"

struct ctx {
    char *root;
    char *dir;
    struct td_log log;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    char path[4096];

    c->root = td_tmpdir("cache-writer");
    snprintf(path, sizeof(path), "%s/cache", c->root);
    c->dir = strdup(path);
    td_log_init(&c->log);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    td_rmtree(c->root);
    free(c->root);
    free(c->dir);
    free(c);
    return 0;
}

static mode_t mode_of(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;

    snprintf(path, sizeof(path), "%s%s%s", dir, name ? "/" : "", name ? name : "");
    if (lstat(path, &st) != 0)
        return (mode_t)-1;
    return st.st_mode & 07777;
}

static int write_data(struct ctx *c, const struct mp_cache_data *d)
{
    int lock, ret;

    if (mp_cache_prepare_dir(c->dir, &c->log.logger) != 0)
        return -1;
    lock = mp_cache_lock(c->dir, &c->log.logger);
    if (lock < 0)
        return -1;
    ret = mp_cache_write(c->dir, d, &c->log.logger);
    mp_cache_unlock(lock);
    return ret;
}

/* Number of leftover temp files in the cache directory. */
static int temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, ".accounts.db.", 13) == 0;
    closedir(d);
    return n;
}

/* ---- round trip and layout ------------------------------------------------ */

static void test_round_trip(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d, back;
    const struct mp_cache_user *u;

    td_fixture(&d);
    assert_int_equal(write_data(c, &d), 0);
    assert_int_equal(mp_cache_load(c->dir, &back, &c->log.logger), 0);
    assert_int_equal(back.generated_at, 1700000000);
    assert_int_equal(back.nusers, 3);
    assert_int_equal(back.ngroups, 4);
    assert_int_equal(back.nreservations, 3);
    u = mp_cache_find_user(&back, "alice");
    assert_non_null(u);
    assert_int_equal(u->uid, 5001);
    assert_string_equal(u->gecos, "Alice Example");
    assert_string_equal(u->home, "/home/alice");
    assert_string_equal(u->shell, "/bin/bash");
    assert_string_equal(u->email, "alice@example.org");
    assert_string_equal(u->profile, d.users[0].profile);
    assert_string_equal(u->membership_id, "11111111-2222-4333-8444-555555555555");
    assert_true(u->admin);
    u = mp_cache_find_user(&back, "carol");
    assert_null(u->gecos);
    assert_null(u->membership_id);
    assert_false(u->admin);
    assert_null(mp_cache_find_user(&back, "nosuch"));
    assert_string_equal(back.groups[2].name, "medstaff");
    assert_int_equal(back.groups[2].nmembers, 3);
    assert_string_equal(back.groups[2].members[2], "carol");
    assert_string_equal(back.reservations[1].profile, d.users[1].profile);
    assert_int_equal(back.reservations[1].uid, 5002);
    mp_cache_data_free(&back);
    mp_cache_data_free(&d);
}

static void test_modes(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d;
    mode_t old = umask(077); /* a strict umask must not hide accounts.db */

    td_fixture(&d);
    assert_int_equal(write_data(c, &d), 0);
    umask(old);
    assert_int_equal(mode_of(c->dir, NULL), 0755);
    assert_int_equal(mode_of(c->dir, "private"), 0700);
    assert_int_equal(mode_of(c->dir, "accounts.db"), 0644);
    assert_int_equal(mode_of(c->dir, ".lock"), 0600);
    assert_int_equal(temp_files(c->dir), 0);
    mp_cache_data_free(&d);
}

static void test_load_missing(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d;

    assert_int_equal(mp_cache_load(c->dir, &d, &c->log.logger), 0);
    assert_int_equal(d.nusers, 0);
    assert_int_equal(mp_cache_prepare_dir(c->dir, &c->log.logger), 0);
    assert_int_equal(mp_cache_load(c->dir, &d, &c->log.logger), 0);
    assert_int_equal(d.nusers + d.ngroups + d.nreservations, 0);
    mp_cache_data_free(&d);
}

static void test_empty_cache(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d, back;

    memset(&d, 0, sizeof(d));
    assert_int_equal(write_data(c, &d), 0);
    assert_int_equal(mp_cache_load(c->dir, &back, &c->log.logger), 0);
    assert_int_equal(back.nusers, 0);
    mp_cache_data_free(&back);
}

static void test_many_entries(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d, back;
    char name[32];

    memset(&d, 0, sizeof(d));
    for (uint32_t i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "user%u", (unsigned)i);
        td_user(&d, name, 10000 + i, 10000 + i, name, NULL);
        td_group(&d, name, 10000 + i, i % 3 == 0 ? "user0,user1" : "");
    }
    assert_int_equal(write_data(c, &d), 0);
    assert_int_equal(mp_cache_load(c->dir, &back, &c->log.logger), 0);
    assert_int_equal(back.nusers, 3000);
    assert_non_null(mp_cache_find_user(&back, "user2999"));
    mp_cache_data_free(&back);
    mp_cache_data_free(&d);
}

/* ---- validation ------------------------------------------------------------- */

/* Applies `mutate` to the fixture, expects the write refused with `reason`
 * logged and the previous cache untouched. */
static void expect_refused(struct ctx *c, void (*mutate)(struct mp_cache_data *),
                           const char *reason)
{
    struct mp_cache_data d;
    size_t before_len, after_len;
    uint8_t *before, *after;

    td_fixture(&d);
    assert_int_equal(write_data(c, &d), 0);
    before = td_read_raw(c->dir, &before_len);
    mutate(&d);
    td_log_init(&c->log);
    assert_int_not_equal(write_data(c, &d), 0);
    if (!td_log_has(&c->log, reason))
        fail_msg("log lacks \"%s\":\n%s", reason, c->log.text);
    after = td_read_raw(c->dir, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);
    mp_cache_data_free(&d);
}

static void dup_name(struct mp_cache_data *d)
{
    free(d->users[1].name);
    d->users[1].name = strdup("alice");
}
static void dup_uid(struct mp_cache_data *d)
{
    d->users[2].uid = 5001;
}
static void uid_zero(struct mp_cache_data *d)
{
    d->users[2].uid = 0;
}
static void colon_gecos(struct mp_cache_data *d)
{
    free(d->users[0].gecos);
    d->users[0].gecos = strdup("Alice:Evil");
}
static void newline_home(struct mp_cache_data *d)
{
    free(d->users[0].home);
    d->users[0].home = strdup("/home/a\nroot::0:0::/:/bin/sh");
}
static void bad_name(struct mp_cache_data *d)
{
    free(d->users[0].name);
    d->users[0].name = strdup("Alice");
}
static void dup_group(struct mp_cache_data *d)
{
    d->groups[3].gid = 6000;
}
static void dup_member(struct mp_cache_data *d)
{
    free(d->groups[2].members[1]);
    d->groups[2].members[1] = strdup("alice");
}
static void uid_reserved_elsewhere(struct mp_cache_data *d)
{
    td_user(d, "mallory", 5009, 5009, NULL, "Practitioner/other");
    td_resv(d, "Practitioner/someone-else", 5009);
}
static void reservation_moved(struct mp_cache_data *d)
{
    d->reservations[0].uid = 5999; /* alice's profile now reserves another uid */
}

static void test_validation(void **state)
{
    struct ctx *c = *state;

    expect_refused(c, dup_name, "duplicate user name \"alice\"");
    expect_refused(c, dup_uid, "duplicate uid 5001");
    expect_refused(c, uid_zero, "uid 0 / gid 6000 not allowed");
    expect_refused(c, colon_gecos, "contains ':'");
    expect_refused(c, newline_home, "control characters");
    expect_refused(c, bad_name, "invalid user name");
    expect_refused(c, dup_group, "duplicate gid 6000");
    expect_refused(c, dup_member, "duplicate member \"alice\"");
    expect_refused(c, uid_reserved_elsewhere, "uid 5009 is reserved for Practitioner/someone-else");
    expect_refused(c, reservation_moved, "holds reserved uid 5999");
}

/* ---- ownership and modes ---------------------------------------------------- */

static void test_insecure_dir(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d, back;
    char priv[4096];

    td_fixture(&d);
    assert_int_equal(write_data(c, &d), 0);
    chmod(c->dir, 0777);
    td_log_init(&c->log);
    assert_int_not_equal(write_data(c, &d), 0);
    assert_true(td_log_has(&c->log, "writable by group or others"));
    assert_int_not_equal(mp_cache_load(c->dir, &back, &c->log.logger), 0);
    chmod(c->dir, 0755);

    snprintf(priv, sizeof(priv), "%s/private", c->dir);
    chmod(priv, 0750);
    td_log_init(&c->log);
    assert_int_not_equal(mp_cache_prepare_dir(c->dir, &c->log.logger), 0);
    assert_true(td_log_has(&c->log, "must be 0700"));
    chmod(priv, 0700);

    if (geteuid() == 0) { /* owner checks need a second uid */
        assert_int_equal(chown(c->dir, 65534, 65534), 0);
        td_log_init(&c->log);
        assert_int_not_equal(write_data(c, &d), 0);
        assert_true(td_log_has(&c->log, "owned by uid 65534"));
        assert_int_equal(chown(c->dir, 0, 0), 0);
    }
    assert_int_equal(write_data(c, &d), 0);
    mp_cache_data_free(&d);
}

static void test_insecure_file(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d, back;
    char path[4096], target[4096];

    td_fixture(&d);
    assert_int_equal(write_data(c, &d), 0);
    snprintf(path, sizeof(path), "%s/accounts.db", c->dir);
    chmod(path, 0666);
    td_log_init(&c->log);
    assert_int_not_equal(mp_cache_load(c->dir, &back, &c->log.logger), 0);
    assert_true(td_log_has(&c->log, "writable by group or others"));
    assert_int_not_equal(write_data(c, &d), 0);
    assert_true(td_log_has(&c->log, "refusing to replace"));
    chmod(path, 0644);

    /* a symlink in place of accounts.db is never followed */
    snprintf(target, sizeof(target), "%s/elsewhere", c->root);
    assert_int_equal(rename(path, target), 0);
    assert_int_equal(symlink(target, path), 0);
    td_log_init(&c->log);
    assert_int_not_equal(mp_cache_load(c->dir, &back, &c->log.logger), 0);
    assert_int_not_equal(write_data(c, &d), 0);
    unlink(path);
    assert_int_equal(write_data(c, &d), 0);
    mp_cache_data_free(&d);
}

/* ---- failed writes keep the old cache ----------------------------------------- */

static void expect_kept(struct ctx *c, const uint8_t *before, size_t len)
{
    size_t n;
    uint8_t *now = td_read_raw(c->dir, &n);

    assert_int_equal(n, len);
    assert_memory_equal(now, before, len);
    assert_int_equal(temp_files(c->dir), 0);
    free(now);
}

static void test_failed_write_fsize(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d;
    struct rlimit old, small;
    uint8_t *before;
    size_t len;
    char name[32];

    td_fixture(&d);
    assert_int_equal(write_data(c, &d), 0);
    before = td_read_raw(c->dir, &len);
    for (uint32_t i = 0; i < 200; i++) { /* well over 4 KiB */
        snprintf(name, sizeof(name), "extra%u", (unsigned)i);
        td_user(&d, name, 20000 + i, 20000 + i, name, NULL);
    }
    signal(SIGXFSZ, SIG_IGN); /* write() then fails with EFBIG, like a full disk */
    getrlimit(RLIMIT_FSIZE, &old);
    small = (struct rlimit){4096, old.rlim_max}; /* soft limit only: it can be raised back */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    td_log_init(&c->log);
    assert_int_not_equal(write_data(c, &d), 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_true(td_log_has(&c->log, "File too large"));
    assert_true(td_log_has(&c->log, "previous version kept"));
    expect_kept(c, before, len);
    free(before);
    mp_cache_data_free(&d);
}

/* chown -R for the cache directory's few entries */
static void chown_cache(const char *dir, uid_t uid)
{
    const char *names[] = {"", "/accounts.db", "/.lock", "/private"};
    char path[4096];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", dir, names[i]);
        assert_int_equal(lchown(path, uid, uid), 0);
    }
}

static void test_failed_write_readonly_dir(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d;
    uint8_t *before;
    size_t len;
    pid_t pid;
    int status;

    td_fixture(&d);
    assert_int_equal(write_data(c, &d), 0);
    before = td_read_raw(c->dir, &len);
    free(d.users[0].gecos);
    d.users[0].gecos = strdup("changed");
    /* A directory the writer cannot create files in (root ignores modes,
     * so as root the child becomes the directory's owner first). */
    if (geteuid() == 0)
        chown_cache(c->dir, 65534);
    pid = fork();
    if (pid == 0) {
        int ok, lock;
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            td_child_exit(2);
        lock = mp_cache_lock(c->dir, &c->log.logger);
        chmod(c->dir, 0555);
        ok = lock >= 0 && mp_cache_write(c->dir, &d, &c->log.logger) != 0 &&
             td_log_has(&c->log, "cannot create temp file: Permission denied") &&
             td_log_has(&c->log, "previous version kept");
        chmod(c->dir, 0755);
        td_child_exit(ok ? 0 : 1);
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (geteuid() == 0)
        chown_cache(c->dir, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    expect_kept(c, before, len);
    free(before);
    mp_cache_data_free(&d);
}

/* ---- atomic replacement seen by a reader ---------------------------------------- */

static void test_atomic_replace(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data small, big;
    pid_t pid;
    int status, reads = 0;
    char name[32];

    td_fixture(&small);
    td_fixture(&big);
    for (uint32_t i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "bulk%u", (unsigned)i);
        td_user(&big, name, 30000 + i, 30000 + i, "bulk user with a longer gecos field", NULL);
    }
    assert_int_equal(write_data(c, &small), 0);
    pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 60; i++)
            if (write_data(c, i % 2 ? &small : &big) != 0)
                td_child_exit(1);
        td_child_exit(0);
    }
    assert_true(pid > 0);
    /* The reader never blocks and never sees a partial file. */
    while (waitpid(pid, &status, WNOHANG) == 0) {
        struct mpc_file f;
        struct mpc_view v;
        char why[MPC_WHY_LEN];
        int r = mpc_file_open(c->dir, &f, &v, why, sizeof(why));
        if (r != MPC_OPEN_OK)
            fail_msg("reader saw a bad cache: %s", why);
        assert_int_equal(mpc_view_check_all(&v, why, sizeof(why)), 0);
        assert_true(v.nusers == 3 || v.nusers == 2003);
        mpc_file_close(&f);
        reads++;
    }
    if (!WIFEXITED(status))
        fail_msg("writer child: status %#x", status);
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(reads > 0);
    assert_int_equal(temp_files(c->dir), 0);
    mp_cache_data_free(&small);
    mp_cache_data_free(&big);
}

static void test_lock_excludes(void **state)
{
    struct ctx *c = *state;
    char path[4096];
    int lock, fd;

    assert_int_equal(mp_cache_prepare_dir(c->dir, &c->log.logger), 0);
    lock = mp_cache_lock(c->dir, &c->log.logger);
    assert_true(lock >= 0);
    snprintf(path, sizeof(path), "%s/.lock", c->dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_not_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    assert_int_equal(errno, EWOULDBLOCK);
    mp_cache_unlock(lock);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    close(fd);
}

/* ---- upsert ------------------------------------------------------------------------ */

static struct mp_cache_user make_user(const char *name, uint32_t uid, uint32_t gid,
                                      const char *profile, const char *gecos)
{
    struct mp_cache_user u = {0};

    u.name = (char *)name;
    u.uid = uid;
    u.gid = gid;
    u.gecos = (char *)gecos;
    u.home = (char *)"/home/x";
    u.shell = (char *)"/bin/sh";
    u.email = (char *)"x@example.org";
    u.profile = (char *)profile;
    return u;
}

static const struct mp_cache_group *find_group(const struct mp_cache_data *d, const char *name)
{
    for (size_t i = 0; i < d->ngroups; i++)
        if (strcmp(d->groups[i].name, name) == 0)
            return &d->groups[i];
    return NULL;
}

static void test_upsert_add_and_replace(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d;
    struct mp_cache_user u = make_user("dave", 5004, 5004, "Practitioner/dave", "Dave");
    const struct mp_cache_group *g;

    td_fixture(&d);
    assert_int_equal(write_data(c, &d), 0);
    mp_cache_data_free(&d);

    assert_int_equal(mp_cache_upsert_user(c->dir, &u, &c->log.logger), 0);
    assert_int_equal(mp_cache_load(c->dir, &d, &c->log.logger), 0);
    assert_int_equal(d.nusers, 4);
    assert_string_equal(mp_cache_find_user(&d, "dave")->gecos, "Dave");
    g = find_group(&d, "dave"); /* user-private group created */
    assert_non_null(g);
    assert_int_equal(g->gid, 5004);
    assert_int_equal(d.nreservations, 4);
    assert_string_equal(d.reservations[3].profile, "Practitioner/dave");
    assert_int_equal(d.reservations[3].uid, 5004);
    assert_non_null(mp_cache_find_user(&d, "alice")); /* others kept */
    assert_int_equal(find_group(&d, "medstaff")->nmembers, 3);
    mp_cache_data_free(&d);

    /* same profile again: replaced, not duplicated */
    u.gecos = (char *)"David";
    u.admin = true;
    assert_int_equal(mp_cache_upsert_user(c->dir, &u, &c->log.logger), 0);
    assert_int_equal(mp_cache_load(c->dir, &d, &c->log.logger), 0);
    assert_int_equal(d.nusers, 4);
    assert_int_equal(d.ngroups, 5);
    assert_int_equal(d.nreservations, 4);
    assert_string_equal(mp_cache_find_user(&d, "dave")->gecos, "David");
    assert_true(mp_cache_find_user(&d, "dave")->admin);
    mp_cache_data_free(&d);
}

static void test_upsert_rename(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d;
    struct mp_cache_user u;
    char *profile;

    td_fixture(&d);
    assert_int_equal(write_data(c, &d), 0);
    profile = strdup(d.users[0].profile);
    mp_cache_data_free(&d);
    /* alice's Practitioner is now called alicia: one entry, group and
     * memberships follow */
    u = make_user("alicia", 5001, 5001, profile, "Alicia");
    assert_int_equal(mp_cache_upsert_user(c->dir, &u, &c->log.logger), 0);
    assert_int_equal(mp_cache_load(c->dir, &d, &c->log.logger), 0);
    assert_int_equal(d.nusers, 3);
    assert_null(mp_cache_find_user(&d, "alice"));
    assert_int_equal(mp_cache_find_user(&d, "alicia")->uid, 5001);
    assert_null(find_group(&d, "alice"));
    assert_int_equal(find_group(&d, "alicia")->gid, 5001);
    assert_string_equal(find_group(&d, "medstaff")->members[0], "alicia");
    assert_string_equal(find_group(&d, "medadmin")->members[0], "alicia");
    mp_cache_data_free(&d);
    free(profile);
}

static void expect_upsert_refused(struct ctx *c, struct mp_cache_user *u, const char *reason)
{
    size_t before_len, after_len;
    uint8_t *before = td_read_raw(c->dir, &before_len), *after;

    td_log_init(&c->log);
    assert_int_not_equal(mp_cache_upsert_user(c->dir, u, &c->log.logger), 0);
    if (!td_log_has(&c->log, reason))
        fail_msg("log lacks \"%s\":\n%s", reason, c->log.text);
    after = td_read_raw(c->dir, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);
}

static void test_upsert_conflicts(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d;
    struct mp_cache_user u;
    char *alice_profile;

    td_fixture(&d);
    td_resv(&d, "Practitioner/gone", 5099); /* a deleted user's uid stays reserved */
    assert_int_equal(write_data(c, &d), 0);
    alice_profile = strdup(d.users[0].profile);
    mp_cache_data_free(&d);

    u = make_user("alice", 5050, 5050, "Practitioner/impostor", NULL);
    expect_upsert_refused(c, &u, "the name already belongs to");
    u = make_user("eve", 5002, 5002, "Practitioner/impostor", NULL);
    expect_upsert_refused(c, &u, "the uid already belongs to");
    u = make_user("eve", 5099, 5099, "Practitioner/impostor", NULL);
    expect_upsert_refused(c, &u, "uid 5099 is reserved for Practitioner/gone");
    u = make_user("alice", 5077, 5077, alice_profile, NULL);
    expect_upsert_refused(c, &u, "uid 5001 is reserved for");
    u = make_user("medstaff", 5060, 5060, "Practitioner/new", NULL);
    expect_upsert_refused(c, &u, "a group of that name exists");
    u = make_user("Bad Name", 5061, 5061, "Practitioner/new", NULL);
    expect_upsert_refused(c, &u, "valid user name");
    u = make_user("nop", 5062, 5062, NULL, NULL);
    expect_upsert_refused(c, &u, "profile");
    /* the reserved uid's own Practitioner may come back */
    u = make_user("returning", 5099, 6000, "Practitioner/gone", NULL);
    assert_int_equal(mp_cache_upsert_user(c->dir, &u, &c->log.logger), 0);
    assert_int_equal(mp_cache_load(c->dir, &d, &c->log.logger), 0);
    assert_int_equal(mp_cache_find_user(&d, "returning")->uid, 5099);
    assert_null(find_group(&d, "returning")); /* gid != uid: no private group */
    assert_int_equal(d.nreservations, 4);
    mp_cache_data_free(&d);
    free(alice_profile);
}

static void test_upsert_creates_dir(void **state)
{
    struct ctx *c = *state;
    struct mp_cache_data d;
    struct mp_cache_user u = make_user("first", 7001, 7001, "Practitioner/first", NULL);

    assert_int_equal(mp_cache_upsert_user(c->dir, &u, &c->log.logger), 0);
    assert_int_equal(mode_of(c->dir, "private"), 0700);
    assert_int_equal(mp_cache_load(c->dir, &d, &c->log.logger), 0);
    assert_int_equal(d.nusers, 1);
    assert_int_equal(d.ngroups, 1);
    assert_int_equal(d.nreservations, 1);
    assert_true(d.generated_at > 0);
    mp_cache_data_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insecure_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insecure_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_fsize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_readonly_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_excludes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert_add_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert_creates_dir, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
