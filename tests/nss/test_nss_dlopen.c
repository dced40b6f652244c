/*
 * dlopen tests of libnss_medplum.so.2: the NSS contract (ERANGE without
 * writing past buflen, NOTFOUND, UNAVAIL), hostile cache files, replacement
 * while mapped, fork, threads.  The module path comes from
 * $NSS_MEDPLUM_MODULE; caches are written with the real writer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp_cache_format.h"
#include "testlib.h"

typedef enum nss_status (*pwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*pwuid_fn)(uid_t, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*pwent_fn)(struct passwd *, char *, size_t, int *);
typedef enum nss_status (*grnam_fn)(const char *, struct group *, char *, size_t, int *);
typedef enum nss_status (*grgid_fn)(gid_t, struct group *, char *, size_t, int *);
typedef enum nss_status (*grent_fn)(struct group *, char *, size_t, int *);
typedef enum nss_status (*setent_fn)(int);
typedef enum nss_status (*endent_fn)(void);
typedef enum nss_status (*initgroups_fn)(const char *, gid_t, long *, long *, gid_t **, long,
                                         int *);

static struct {
    void *handle;
    pwnam_fn getpwnam_r;
    pwuid_fn getpwuid_r;
    setent_fn setpwent;
    pwent_fn getpwent_r;
    endent_fn endpwent;
    grnam_fn getgrnam_r;
    grgid_fn getgrgid_r;
    setent_fn setgrent;
    grent_fn getgrent_r;
    endent_fn endgrent;
    initgroups_fn initgroups_dyn;
} nss;

static char *tmp_root, *cache_dir;

static void *sym(const char *name)
{
    void *p = dlsym(nss.handle, name);

    if (p == NULL) {
        fprintf(stderr, "missing %s\n", name);
        abort();
    }
    return p;
}

static void write_fixture(void)
{
    struct mp_cache_data d;

    td_fixture(&d);
    td_write(cache_dir, &d);
    mp_cache_data_free(&d);
}

static int group_setup(void **state)
{
    const char *module = getenv("NSS_MEDPLUM_MODULE");
    char path[4096];

    (void)state;
    tmp_root = td_tmpdir("nss-dlopen");
    snprintf(path, sizeof(path), "%s/cache", tmp_root);
    cache_dir = strdup(path);
    setenv("NSS_MEDPLUM_CACHE_DIR", cache_dir, 1);
    write_fixture();
    nss.handle = dlopen(module != NULL ? module : "build/libnss_medplum.so.2", RTLD_NOW);
    if (nss.handle == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return -1;
    }
    nss.getpwnam_r = (pwnam_fn)sym("_nss_medplum_getpwnam_r");
    nss.getpwuid_r = (pwuid_fn)sym("_nss_medplum_getpwuid_r");
    nss.setpwent = (setent_fn)sym("_nss_medplum_setpwent");
    nss.getpwent_r = (pwent_fn)sym("_nss_medplum_getpwent_r");
    nss.endpwent = (endent_fn)sym("_nss_medplum_endpwent");
    nss.getgrnam_r = (grnam_fn)sym("_nss_medplum_getgrnam_r");
    nss.getgrgid_r = (grgid_fn)sym("_nss_medplum_getgrgid_r");
    nss.setgrent = (setent_fn)sym("_nss_medplum_setgrent");
    nss.getgrent_r = (grent_fn)sym("_nss_medplum_getgrent_r");
    nss.endgrent = (endent_fn)sym("_nss_medplum_endgrent");
    nss.initgroups_dyn = (initgroups_fn)sym("_nss_medplum_initgroups_dyn");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    nss.endpwent();
    nss.endgrent();
    if (nss.handle != NULL)
        dlclose(nss.handle);
    td_rmtree(tmp_root);
    free(tmp_root);
    free(cache_dir);
    return 0;
}

/* Every test starts from the standard fixture. */
static int fixture_setup(void **state)
{
    (void)state;
    write_fixture();
    return 0;
}

/* ---- point lookups ------------------------------------------------------- */

static void test_getpwnam_hit(void **state)
{
    struct passwd pw;
    char buf[1024];
    int err = 0;

    (void)state;
    assert_int_equal(nss.getpwnam_r("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    assert_string_equal(pw.pw_name, "alice");
    assert_string_equal(pw.pw_passwd, "*"); /* no shadow entry to point at */
    assert_int_equal(pw.pw_uid, 5001);
    assert_int_equal(pw.pw_gid, 5001);
    assert_string_equal(pw.pw_gecos, "Alice Example");
    assert_string_equal(pw.pw_dir, "/home/alice");
    assert_string_equal(pw.pw_shell, "/bin/bash");
    /* carol has no gecos: an empty string, never NULL */
    assert_int_equal(nss.getpwnam_r("carol", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    assert_string_equal(pw.pw_gecos, "");
    assert_int_equal(pw.pw_gid, 6000);
}

static void test_getpwuid_hit(void **state)
{
    struct passwd pw;
    char buf[1024];
    int err = 0;

    (void)state;
    assert_int_equal(nss.getpwuid_r(5002, &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    assert_string_equal(pw.pw_name, "bob");
    assert_string_equal(pw.pw_gecos, "Bob");
}

static void test_notfound(void **state)
{
    struct passwd pw;
    struct group gr;
    char buf[1024];
    int err;

    (void)state;
    err = 0;
    assert_int_equal(nss.getpwnam_r("nosuch", &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
    assert_int_equal(err, ENOENT);
    err = 0;
    assert_int_equal(nss.getpwuid_r(4242, &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
    assert_int_equal(err, ENOENT);
    err = 0;
    assert_int_equal(nss.getgrnam_r("nosuch", &gr, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
    assert_int_equal(err, ENOENT);
    err = 0;
    assert_int_equal(nss.getgrgid_r(4242, &gr, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
    assert_int_equal(err, ENOENT);
    /* root is never answered, whatever the cache says */
    assert_int_equal(nss.getpwnam_r("root", &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
    assert_int_equal(nss.getpwuid_r(0, &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
    assert_int_equal(nss.getgrgid_r(0, &gr, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
}

static void test_group_lookup(void **state)
{
    struct group gr;
    char buf[1024];
    int err = 0;

    (void)state;
    assert_int_equal(nss.getgrnam_r("medstaff", &gr, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    assert_string_equal(gr.gr_name, "medstaff");
    assert_string_equal(gr.gr_passwd, "*");
    assert_int_equal(gr.gr_gid, 6000);
    assert_non_null(gr.gr_mem);
    assert_string_equal(gr.gr_mem[0], "alice");
    assert_string_equal(gr.gr_mem[1], "bob");
    assert_string_equal(gr.gr_mem[2], "carol");
    assert_null(gr.gr_mem[3]);
    assert_int_equal(nss.getgrgid_r(5001, &gr, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    assert_string_equal(gr.gr_name, "alice");
    assert_null(gr.gr_mem[0]);
}

/* ---- ERANGE: every short length, canary and untouched buffer ------------- */

enum lookup_kind { BY_PWNAM, BY_PWUID, BY_PWENT, BY_GRNAM, BY_GRGID, BY_GRENT };

static enum nss_status do_lookup(enum lookup_kind k, char *buf, size_t len, int *err)
{
    struct passwd pw;
    struct group gr;

    switch (k) {
    case BY_PWNAM:
        return nss.getpwnam_r("alice", &pw, buf, len, err);
    case BY_PWUID:
        return nss.getpwuid_r(5001, &pw, buf, len, err);
    case BY_PWENT:
        return nss.getpwent_r(&pw, buf, len, err);
    case BY_GRNAM:
        return nss.getgrnam_r("medstaff", &gr, buf, len, err);
    case BY_GRGID:
        return nss.getgrgid_r(6000, &gr, buf, len, err);
    default:
        return nss.getgrent_r(&gr, buf, len, err);
    }
}

/* Tries len = 0, 1, 2, ... at byte offset `skew` of a fresh allocation of
 * exactly len + 1 bytes: every failure must be TRYAGAIN/ERANGE with the
 * buffer (and the canary byte at buf[len]) untouched; then success must
 * leave the canary alone.  Returns the first length that worked. */
static size_t check_erange(enum lookup_kind k, size_t skew)
{
    for (size_t len = 0; len < 4096; len++) {
        unsigned char *mem = malloc(skew + len + 1);
        char *buf = (char *)mem + skew;
        int err = 0;
        enum nss_status st;

        assert_non_null(mem);
        memset(mem, 0x5a, skew + len);
        mem[skew + len] = 0xa5; /* canary just past buflen */
        st = do_lookup(k, len == 0 ? buf : buf, len, &err);
        assert_int_equal(mem[skew + len], 0xa5);
        if (st == NSS_STATUS_SUCCESS) {
            free(mem);
            return len;
        }
        assert_int_equal(st, NSS_STATUS_TRYAGAIN);
        assert_int_equal(err, ERANGE);
        for (size_t i = 0; i < skew + len; i++)
            assert_int_equal(mem[i], 0x5a);
        free(mem);
    }
    fail_msg("no buffer size worked");
    return 0;
}

static void test_erange_passwd(void **state)
{
    size_t need;

    (void)state;
    /* "alice" "*" "Alice Example" "/home/alice" "/bin/bash", NUL-terminated */
    need = check_erange(BY_PWNAM, 0);
    assert_int_equal(need, 6 + 2 + 14 + 12 + 10);
    assert_int_equal(check_erange(BY_PWUID, 0), need);
    nss.setpwent(0);
    assert_int_equal(check_erange(BY_PWENT, 0), need); /* ERANGE does not skip alice */
    nss.endpwent();
}

static void test_erange_group(void **state)
{
    (void)state;
    for (size_t skew = 0; skew < 8; skew++) { /* misaligned buffers too */
        size_t need = check_erange(BY_GRNAM, skew);
        size_t pad = (8 - skew % 8) % 8;
        /* pointers (3 members + NULL), "medstaff" "*" "alice" "bob" "carol" */
        assert_int_equal(need, pad + 4 * sizeof(char *) + 9 + 2 + 6 + 4 + 6);
        assert_int_equal(check_erange(BY_GRGID, skew), need);
    }
    nss.setgrent(0);
    check_erange(BY_GRENT, 3);
    nss.endgrent();
}

static void test_erange_one_byte(void **state)
{
    struct passwd pw;
    struct group gr;
    char buf[2] = {0x11, 0x22};
    int err = 0;

    (void)state;
    assert_int_equal(nss.getpwnam_r("alice", &pw, buf, 1, &err), NSS_STATUS_TRYAGAIN);
    assert_int_equal(err, ERANGE);
    assert_int_equal(nss.getgrnam_r("alice", &gr, buf, 1, &err), NSS_STATUS_TRYAGAIN);
    assert_int_equal(err, ERANGE);
    assert_int_equal(buf[0], 0x11);
    assert_int_equal(buf[1], 0x22);
}

/* ---- enumeration and initgroups -------------------------------------------- */

static void test_enumeration(void **state)
{
    const char *want_users[] = {"alice", "bob", "carol"};
    const char *want_groups[] = {"alice", "bob", "medstaff", "medadmin"};
    struct passwd pw;
    struct group gr;
    char buf[1024];
    int err = 0;

    (void)state;
    for (int round = 0; round < 2; round++) { /* setpwent restarts */
        assert_int_equal(nss.setpwent(0), NSS_STATUS_SUCCESS);
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal(nss.getpwent_r(&pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
            assert_string_equal(pw.pw_name, want_users[i]);
        }
        assert_int_equal(nss.getpwent_r(&pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(err, ENOENT);
        assert_int_equal(nss.getpwent_r(&pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
    }
    nss.endpwent();
    nss.setgrent(0);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(nss.getgrent_r(&gr, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
        assert_string_equal(gr.gr_name, want_groups[i]);
    }
    assert_int_equal(nss.getgrent_r(&gr, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
    nss.endgrent();
}

static void test_initgroups(void **state)
{
    long start = 1, size = 1;
    gid_t *groups = malloc(sizeof(gid_t));
    int err = 0;

    (void)state;
    groups[0] = 5001;
    assert_int_equal(nss.initgroups_dyn("alice", 5001, &start, &size, &groups, 0, &err),
                     NSS_STATUS_SUCCESS);
    assert_int_equal(start, 3);
    assert_true(size >= 3);
    assert_int_equal(groups[0], 5001);
    assert_int_equal(groups[1], 6000);
    assert_int_equal(groups[2], 6001);
    /* already present gids are not repeated */
    assert_int_equal(nss.initgroups_dyn("alice", 5001, &start, &size, &groups, 0, &err),
                     NSS_STATUS_SUCCESS);
    assert_int_equal(start, 3);
    /* limit: at most 2 groups in total */
    start = 1;
    size = 1;
    assert_int_equal(nss.initgroups_dyn("alice", 5001, &start, &size, &groups, 2, &err),
                     NSS_STATUS_SUCCESS);
    assert_int_equal(start, 2);
    assert_int_equal(size, 2);
    /* the primary group is skipped */
    start = 1;
    groups[0] = 6000;
    assert_int_equal(nss.initgroups_dyn("carol", 6000, &start, &size, &groups, 0, &err),
                     NSS_STATUS_SUCCESS);
    assert_int_equal(start, 1);
    assert_int_equal(nss.initgroups_dyn("nosuch", 100, &start, &size, &groups, 0, &err),
                     NSS_STATUS_NOTFOUND);
    free(groups);
}

/* ---- descriptors ------------------------------------------------------------- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_no_descriptors_kept(void **state)
{
    struct passwd pw;
    char buf[1024];
    int err, before, mine = open("/dev/null", O_RDONLY | O_CLOEXEC);

    (void)state;
    before = count_fds();
    for (int i = 0; i < 50; i++) {
        assert_int_equal(nss.getpwnam_r("bob", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
        if (i % 10 == 0)
            write_fixture(); /* forces a remap */
    }
    nss.setpwent(0);
    assert_int_equal(nss.getpwent_r(&pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    nss.endpwent();
    assert_int_equal(count_fds(), before);
    assert_int_not_equal(fcntl(mine, F_GETFD), -1); /* ours is untouched */
    close(mine);
}

/* ---- hostile files ------------------------------------------------------------- */

static enum nss_status last_group_status; /* getgrnam("medstaff") of probe_all */

/* Every entry point on the current file; none may crash.  Returns the
 * getpwnam("alice") status (the group one is in last_group_status). */
static enum nss_status probe_all(void)
{
    struct passwd pw;
    struct group gr;
    char buf[4096];
    int err = 0;
    long start = 1, size = 4;
    gid_t *groups = calloc(4, sizeof(gid_t));
    enum nss_status st = nss.getpwnam_r("alice", &pw, buf, sizeof(buf), &err);

    nss.getpwnam_r("bob", &pw, buf, sizeof(buf), &err);
    nss.getpwuid_r(5001, &pw, buf, sizeof(buf), &err);
    nss.getpwuid_r(5003, &pw, buf, sizeof(buf), &err);
    last_group_status = nss.getgrnam_r("medstaff", &gr, buf, sizeof(buf), &err);
    nss.getgrgid_r(6001, &gr, buf, sizeof(buf), &err);
    nss.initgroups_dyn("alice", 5001, &start, &size, &groups, 0, &err);
    nss.setpwent(0);
    for (int i = 0; i < 100 && nss.getpwent_r(&pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS;
         i++)
        ;
    nss.endpwent();
    nss.setgrent(0);
    for (int i = 0; i < 100 && nss.getgrent_r(&gr, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS;
         i++)
        ;
    nss.endgrent();
    free(groups);
    return st;
}

static uint8_t *fixture_image(size_t *len)
{
    write_fixture();
    return td_read_raw(cache_dir, len);
}

static void test_random_files(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 300; seed++) {
        size_t len;
        uint8_t *img;

        srandom(seed);
        len = (size_t)random() % 2048;
        img = malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            img[i] = (uint8_t)random();
        if (seed % 2 == 0 && len >= MPC_HEADER_SIZE) {
            /* plausible header so the deeper checks run too */
            memcpy(img, MPC_MAGIC, MPC_MAGIC_LEN);
            td_put32(img + MPC_H_VERSION, MPC_VERSION);
            td_put32(img + MPC_H_HEADER_SIZE, MPC_HEADER_SIZE);
            td_put32(img + MPC_H_FILE_SIZE, (uint32_t)len);
            td_fix_crc(img, len);
        }
        td_write_raw(cache_dir, img, len);
        assert_int_equal(probe_all(), NSS_STATUS_UNAVAIL);
        free(img);
    }
}

/* Byte flips in a valid file with the checksum repaired: the structure
 * checks alone must keep the reader in bounds (ASan/valgrind runs catch
 * what an assertion cannot). */
static void test_mutated_files(void **state)
{
    size_t len;
    uint8_t *orig = fixture_image(&len), *img = malloc(len);

    (void)state;
    for (unsigned seed = 1; seed <= 400; seed++) {
        srandom(seed);
        memcpy(img, orig, len);
        for (int k = 0, n = 1 + (int)(random() % 8); k < n; k++) {
            size_t at = MPC_CRC_START + (size_t)random() % (len - MPC_CRC_START);
            img[at] = seed % 3 == 0 ? 0xff : (uint8_t)random();
        }
        td_fix_crc(img, len);
        td_write_raw(cache_dir, img, len);
        probe_all();
    }
    free(img);
    free(orig);
}

static void test_truncated(void **state)
{
    size_t len;
    uint8_t *img = fixture_image(&len);

    (void)state;
    for (size_t n = 0; n < len; n++) {
        td_write_raw(cache_dir, img, n);
        assert_int_equal(probe_all(), NSS_STATUS_UNAVAIL);
    }
    /* truncated but with a matching size field and checksum */
    for (size_t n = MPC_HEADER_SIZE; n < len; n += 7) {
        td_put32(img + MPC_H_FILE_SIZE, (uint32_t)n);
        td_fix_crc(img, n);
        td_write_raw(cache_dir, img, n);
        assert_int_equal(probe_all(), NSS_STATUS_UNAVAIL);
    }
    free(img);
}

/* Patches a 32-bit field, repairs the checksum, expects UNAVAIL from
 * getpwnam (or, for group_field, from getgrnam). */
static void expect_patch_unavail_in(size_t at, uint32_t value, int group_field)
{
    size_t len;
    uint8_t *img = fixture_image(&len);

    assert_true(at + 4 <= len);
    td_put32(img + at, value);
    td_fix_crc(img, len);
    td_write_raw(cache_dir, img, len);
    assert_int_equal(probe_all(), group_field ? NSS_STATUS_SUCCESS : NSS_STATUS_UNAVAIL);
    if (group_field)
        assert_int_equal(last_group_status, NSS_STATUS_UNAVAIL);
    free(img);
}

static void expect_patch_unavail(size_t at, uint32_t value)
{
    expect_patch_unavail_in(at, value, 0);
}

static void test_huge_counts(void **state)
{
    static const unsigned counts[] = {MPC_H_USERS_OFF,     MPC_H_GROUPS_OFF, MPC_H_MEMBERS_OFF,
                                      MPC_H_RESV_OFF,      MPC_H_MSHIP_OFF,  MPC_H_MSHIP_GRP_OFF,
                                      MPC_H_IDX_USER_NAME, MPC_H_IDX_UID,    MPC_H_IDX_GID};

    (void)state;
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        expect_patch_unavail(counts[i] + 4, 0xffffffffu);
        expect_patch_unavail(counts[i] + 4, 0x40000000u);
    }
    expect_patch_unavail(MPC_H_STRTAB_OFF + 4, 0xffffffffu);
    expect_patch_unavail(MPC_H_IDX_UID + 4, 3); /* not a power of two */
    expect_patch_unavail(MPC_H_IDX_UID + 4, 0);
}

static void test_offsets_out_of_range(void **state)
{
    static const unsigned offs[] = {MPC_H_STRTAB_OFF, MPC_H_USERS_OFF, MPC_H_GROUPS_OFF,
                                    MPC_H_IDX_USER_NAME, MPC_H_IDX_GROUP_NAME};
    size_t len;
    uint8_t *img = fixture_image(&len);

    (void)state;
    free(img);
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        expect_patch_unavail(offs[i], (uint32_t)len);
        expect_patch_unavail(offs[i], 0xfffffff0u);
        expect_patch_unavail(offs[i], 2); /* inside the header */
    }
}

static void test_missing_terminator(void **state)
{
    size_t len;
    uint8_t *img = fixture_image(&len);
    uint32_t st_off = td_get32(img + MPC_H_STRTAB_OFF),
             st_len = td_get32(img + MPC_H_STRTAB_OFF + 4);

    (void)state;
    img[st_off + st_len - 1] = 'x'; /* last string loses its NUL */
    td_fix_crc(img, len);
    td_write_raw(cache_dir, img, len);
    assert_int_equal(probe_all(), NSS_STATUS_UNAVAIL);
    free(img);
}

static void test_index_past_records(void **state)
{
    size_t len;
    uint8_t *img = fixture_image(&len);
    uint32_t off = td_get32(img + MPC_H_IDX_USER_NAME), n = td_get32(img + MPC_H_IDX_USER_NAME + 4);
    uint32_t nusers = td_get32(img + MPC_H_USERS_OFF + 4);
    struct passwd pw;
    char buf[1024];
    int err = 0;

    (void)state;
    for (uint32_t i = 0; i < n; i++)
        td_put32(img + off + 4 * i, nusers + 1 + i); /* every slot past the records */
    td_fix_crc(img, len);
    td_write_raw(cache_dir, img, len);
    assert_int_equal(nss.getpwnam_r("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_UNAVAIL);
    assert_int_equal(nss.getpwnam_r("zed", &pw, buf, sizeof(buf), &err), NSS_STATUS_UNAVAIL);
    /* the uid index is intact */
    assert_int_equal(nss.getpwuid_r(5001, &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    free(img);
}

static void test_bad_record_fields(void **state)
{
    size_t len;
    uint8_t *img = fixture_image(&len);
    uint32_t users = td_get32(img + MPC_H_USERS_OFF), groups = td_get32(img + MPC_H_GROUPS_OFF);
    uint32_t st_len = td_get32(img + MPC_H_STRTAB_OFF + 4);

    (void)state;
    free(img);
    expect_patch_unavail(users + MPC_U_GECOS, st_len);   /* string past the table */
    expect_patch_unavail(users + MPC_U_NAME, MPC_NOSTR); /* a user without a name */
    expect_patch_unavail_in(groups + 2 * MPC_GROUP_SIZE + MPC_G_COUNT, 0x7fffffffu, 1);
    expect_patch_unavail_in(groups + 2 * MPC_GROUP_SIZE + MPC_G_FIRST, 0xfffffffeu, 1);
    expect_patch_unavail_in(groups + 2 * MPC_GROUP_SIZE + MPC_G_NAME, st_len + 100, 1);
}

static void test_root_in_cache_refused(void **state)
{
    size_t len;
    uint8_t *img = fixture_image(&len);
    uint32_t users = td_get32(img + MPC_H_USERS_OFF);
    struct passwd pw;
    char buf[1024];
    int err = 0;

    (void)state;
    td_put32(img + users + MPC_USER_SIZE + MPC_U_UID, 0); /* bob gets uid 0 */
    td_fix_crc(img, len);
    td_write_raw(cache_dir, img, len);
    assert_int_equal(nss.getpwnam_r("bob", &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
    nss.setpwent(0);
    while (nss.getpwent_r(&pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS)
        assert_int_not_equal(pw.pw_uid, 0);
    nss.endpwent();
    free(img);
}

static void test_insecure_cache(void **state)
{
    struct passwd pw;
    char buf[1024], path[4096];
    int err = 0;

    (void)state;
    snprintf(path, sizeof(path), "%s/%s", cache_dir, MPC_FILE_NAME);
    chmod(path, 0664);
    assert_int_equal(nss.getpwnam_r("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_UNAVAIL);
    chmod(path, 0644);
    assert_int_equal(nss.getpwnam_r("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    {
        /* the directory is checked whenever the file is (re)mapped */
        size_t len;
        uint8_t *img = td_read_raw(cache_dir, &len);
        chmod(cache_dir, 0775);
        td_write_raw(cache_dir, img, len);
        assert_int_equal(nss.getpwnam_r("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_UNAVAIL);
        free(img);
    }
    chmod(cache_dir, 0755);
    unlink(path);
    assert_int_equal(nss.getpwnam_r("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_UNAVAIL);
    assert_int_equal(err, ENOENT);
}

/* ---- replacement, fork, threads -------------------------------------------- */

static void write_version(int v)
{
    struct mp_cache_data d;

    td_fixture(&d);
    free(d.users[1].gecos);
    d.users[1].gecos = strdup(v == 1 ? "version-one" : "version-two");
    /* the sizes differ too, so truncation-style mixing would show */
    if (v == 2)
        td_user(&d, "dave", 5004, 6000, "Dave", NULL);
    td_write(cache_dir, &d);
    mp_cache_data_free(&d);
}

static void test_replaced_while_mapped(void **state)
{
    struct passwd pw;
    char buf[1024];
    int err = 0;

    (void)state;
    write_version(1);
    assert_int_equal(nss.getpwnam_r("bob", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    assert_string_equal(pw.pw_gecos, "version-one");
    nss.setpwent(0); /* an enumeration holds the old mapping */
    assert_int_equal(nss.getpwent_r(&pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    write_version(2);
    assert_int_equal(nss.getpwnam_r("bob", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    assert_string_equal(pw.pw_gecos, "version-two");
    assert_int_equal(nss.getpwnam_r("dave", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    /* the enumeration continues on its snapshot: bob v1, carol, end */
    assert_int_equal(nss.getpwent_r(&pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    assert_string_equal(pw.pw_gecos, "version-one");
    assert_int_equal(nss.getpwent_r(&pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    assert_int_equal(nss.getpwent_r(&pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
    nss.endpwent();
}

static volatile int stop_threads;

static void *lookup_thread(void *arg)
{
    long bad = 0;

    (void)arg;
    while (!stop_threads) {
        struct passwd pw;
        struct group gr;
        char buf[1024];
        int err = 0;
        long start = 1, size = 4;
        gid_t *groups = calloc(4, sizeof(gid_t));

        if (nss.getpwnam_r("bob", &pw, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS ||
            (strcmp(pw.pw_gecos, "version-one") != 0 && strcmp(pw.pw_gecos, "version-two") != 0))
            bad++;
        if (nss.getpwuid_r(5001, &pw, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS ||
            strcmp(pw.pw_name, "alice") != 0)
            bad++;
        if (nss.getgrnam_r("medstaff", &gr, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS ||
            gr.gr_gid != 6000)
            bad++;
        if (nss.initgroups_dyn("alice", 5001, &start, &size, &groups, 0, &err) !=
                NSS_STATUS_SUCCESS ||
            start != 3)
            bad++;
        free(groups);
    }
    return (void *)bad;
}

static void *enum_thread(void *arg)
{
    long bad = 0;

    (void)arg;
    while (!stop_threads) {
        struct passwd pw;
        struct group gr;
        char buf[1024];
        int err = 0;
        enum nss_status st;

        /* threads share the one enumeration (as with glibc's setpwent):
         * entries interleave, but each must be complete and valid */
        nss.setpwent(0);
        while ((st = nss.getpwent_r(&pw, buf, sizeof(buf), &err)) == NSS_STATUS_SUCCESS)
            if (pw.pw_uid < 5001 || pw.pw_uid > 5004 || strncmp(pw.pw_dir, "/home/", 6) != 0)
                bad++;
        if (st != NSS_STATUS_NOTFOUND)
            bad++;
        nss.endpwent();
        nss.setgrent(0);
        while ((st = nss.getgrent_r(&gr, buf, sizeof(buf), &err)) == NSS_STATUS_SUCCESS)
            if (gr.gr_gid < 5001 || gr.gr_gid > 6001)
                bad++;
        if (st != NSS_STATUS_NOTFOUND)
            bad++;
        nss.endgrent();
    }
    return (void *)bad;
}

static long run_threads(int lookers, int enumerators, int replacements, int forks)
{
    pthread_t t[16];
    int n = 0;
    long bad = 0;

    stop_threads = 0;
    for (int i = 0; i < lookers; i++)
        assert_int_equal(pthread_create(&t[n++], NULL, lookup_thread, NULL), 0);
    for (int i = 0; i < enumerators; i++)
        assert_int_equal(pthread_create(&t[n++], NULL, enum_thread, NULL), 0);
    for (int i = 0; i < replacements; i++)
        write_version(i % 2 + 1);
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        int status;
        if (pid == 0) {
            struct passwd pw;
            char buf[1024];
            int err = 0;
            alarm(10); /* a deadlock in the child kills it */
            td_child_exit(nss.getpwnam_r("alice", &pw, buf, sizeof(buf), &err) ==
                                      NSS_STATUS_SUCCESS &&
                                  strcmp(pw.pw_name, "alice") == 0
                              ? 0
                              : 1);
        }
        assert_true(pid > 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    if (replacements == 0 && forks == 0)
        usleep(300 * 1000);
    stop_threads = 1;
    for (int i = 0; i < n; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    return bad;
}

static void test_threads_replacing(void **state)
{
    (void)state;
    write_version(1);
    assert_int_equal(run_threads(4, 0, 100, 0), 0);
}

static void test_threads_enumerate_and_lookup(void **state)
{
    (void)state;
    write_version(1);
    assert_int_equal(run_threads(4, 4, 0, 0), 0);
    assert_int_equal(run_threads(4, 4, 30, 0), 0);
}

static void test_fork_after_lookup(void **state)
{
    struct passwd pw;
    char buf[1024];
    int err = 0, status;
    pid_t pid;

    (void)state;
    assert_int_equal(nss.getpwnam_r("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
    pid = fork();
    if (pid == 0) {
        int ok = nss.getpwnam_r("alice", &pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS;
        write_version(2); /* the child sees a replacement too */
        ok = ok && nss.getpwnam_r("dave", &pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS;
        td_child_exit(ok ? 0 : 1);
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(nss.getpwnam_r("dave", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
}

static void test_fork_while_threads_look_up(void **state)
{
    (void)state;
    write_version(1);
    assert_int_equal(run_threads(4, 2, 0, 40), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_getpwnam_hit, fixture_setup),
        cmocka_unit_test_setup(test_getpwuid_hit, fixture_setup),
        cmocka_unit_test_setup(test_notfound, fixture_setup),
        cmocka_unit_test_setup(test_group_lookup, fixture_setup),
        cmocka_unit_test_setup(test_erange_passwd, fixture_setup),
        cmocka_unit_test_setup(test_erange_group, fixture_setup),
        cmocka_unit_test_setup(test_erange_one_byte, fixture_setup),
        cmocka_unit_test_setup(test_enumeration, fixture_setup),
        cmocka_unit_test_setup(test_initgroups, fixture_setup),
        cmocka_unit_test_setup(test_no_descriptors_kept, fixture_setup),
        cmocka_unit_test_setup(test_random_files, fixture_setup),
        cmocka_unit_test_setup(test_mutated_files, fixture_setup),
        cmocka_unit_test_setup(test_truncated, fixture_setup),
        cmocka_unit_test_setup(test_huge_counts, fixture_setup),
        cmocka_unit_test_setup(test_offsets_out_of_range, fixture_setup),
        cmocka_unit_test_setup(test_missing_terminator, fixture_setup),
        cmocka_unit_test_setup(test_index_past_records, fixture_setup),
        cmocka_unit_test_setup(test_bad_record_fields, fixture_setup),
        cmocka_unit_test_setup(test_root_in_cache_refused, fixture_setup),
        cmocka_unit_test_setup(test_insecure_cache, fixture_setup),
        cmocka_unit_test_setup(test_replaced_while_mapped, fixture_setup),
        cmocka_unit_test_setup(test_threads_replacing, fixture_setup),
        cmocka_unit_test_setup(test_threads_enumerate_and_lookup, fixture_setup),
        cmocka_unit_test_setup(test_fork_after_lookup, fixture_setup),
        cmocka_unit_test_setup(test_fork_while_threads_look_up, fixture_setup),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
