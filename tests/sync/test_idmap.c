/* The mapping rules of mp_idmap.h and the page parser of mp_directory.h:
 * user names, the uid function (determinism, range, collision order,
 * reservations, pins), gecos sanitising, groups, membership states, and the
 * login-time upsert. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_cache.h"
#include "mp_config.h"
#include "mp_directory.h"
#include "mp_idmap.h"

#define PROJECT "ce04dfeb-96a9-49e7-abb8-098580eeed12"
#define ALICE_ID "7618b02a-aace-465e-96d6-68f936dcf006"
#define ID(n) "00000000-0000-4000-8000-00000000000" #n
#define MID(n) "10000000-0000-4000-8000-00000000000" #n

static char logbuf[16384];

static void capture(void *ctx, int priority, const char *message)
{
    (void)ctx;
    (void)priority;
    strncat(logbuf, message, sizeof(logbuf) - strlen(logbuf) - 2);
    strcat(logbuf, "\n");
}

static const mp_logger logger = {capture, NULL, true};

static char tmpdir[64];
static char passwd_path[128], group_path[128];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void local_files(const char *passwd, const char *group)
{
    write_file(passwd_path, passwd);
    write_file(group_path, group);
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test-idmap-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(passwd_path, sizeof(passwd_path), "%s/passwd", tmpdir);
    snprintf(group_path, sizeof(group_path), "%s/group", tmpdir);
    local_files("root:x:0:0::/root:/bin/sh\n", "root:x:0:\n");
    logbuf[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void config(struct mp_config *cfg, const char *extra)
{
    char text[2048];

    snprintf(text, sizeof(text),
             "base_url = https://medplum.example.org/\nproject_id = " PROJECT "\n"
             "cache_dir = %s/cache\n%s",
             tmpdir, extra ? extra : "");
    assert_int_equal(mp_config_init(cfg), 0);
    assert_int_equal(mp_config_parse(cfg, "t.conf", text, &logger), 0);
}

/* ---- bundles ---- */

struct member {
    const char *mid; /* NULL: Practitioner-only entry */
    const char *pid;
    const char *email;  /* telecom and user.display */
    const char *active; /* JSON literal or NULL (absent) */
    bool admin;
    const char *name_json;  /* Practitioner.name array, or NULL */
    const char *prac_ident; /* Practitioner.identifier array, or NULL */
    const char *member_ident;
};

static char *bundle(const struct member *m, size_t n, const char *next)
{
    size_t cap = 4096 + n * 2048;
    char *out = malloc(cap);
    size_t len = 0;

    assert_non_null(out);
    len += (size_t)snprintf(out + len, cap - len,
                            "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[");
    for (size_t i = 0; i < n; i++) {
        if (m[i].mid != NULL)
            len += (size_t)snprintf(
                out + len, cap - len,
                "%s{\"resource\":{\"resourceType\":\"ProjectMembership\",\"id\":\"%s\","
                "\"project\":{\"reference\":\"Project/" PROJECT "\"},"
                "\"user\":{\"reference\":\"User/x\",\"display\":\"%s\"},"
                "\"profile\":{\"reference\":\"Practitioner/%s\",\"display\":\"Display %zu\"}"
                "%s%s%s%s%s%s}}",
                len > 80 ? "," : "", m[i].mid, m[i].email, m[i].pid, i,
                m[i].active ? ",\"active\":" : "", m[i].active ? m[i].active : "",
                m[i].admin ? ",\"admin\":true" : "", m[i].member_ident ? ",\"identifier\":" : "",
                m[i].member_ident ? m[i].member_ident : "", "");
        len += (size_t)snprintf(
            out + len, cap - len,
            "%s{\"search\":{\"mode\":\"include\"},\"resource\":{\"resourceType\":"
            "\"Practitioner\",\"id\":\"%s\",\"telecom\":[{\"system\":\"email\",\"value\":\"%s\"}]"
            "%s%s%s%s}}",
            len > 80 ? "," : "", m[i].pid, m[i].email, m[i].name_json ? ",\"name\":" : "",
            m[i].name_json ? m[i].name_json : "", m[i].prac_ident ? ",\"identifier\":" : "",
            m[i].prac_ident ? m[i].prac_ident : "");
    }
    len +=
        (size_t)snprintf(out + len, cap - len, "],\"link\":[{\"relation\":\"self\",\"url\":\"x\"}");
    if (next != NULL)
        len +=
            (size_t)snprintf(out + len, cap - len, ",{\"relation\":\"next\",\"url\":\"%s\"}", next);
    snprintf(out + len, cap - len, "]}");
    return out;
}

static void load_dir(struct mp_directory *dir, const struct mp_config *cfg,
                     enum mp_dir_source source, const struct member *m, size_t n)
{
    char *body = bundle(m, n, NULL);
    char *next = NULL, reason[160];
    size_t added = 0;

    memset(dir, 0, sizeof(*dir));
    dir->source = source;
    assert_int_equal(mp_directory_add_page(dir, cfg, body, strlen(body), &next, &added, &logger,
                                           reason, sizeof(reason)),
                     0);
    assert_null(next);
    assert_int_equal(mp_directory_finish(dir), 0);
    free(body);
}

struct mapped {
    struct mp_config cfg;
    struct mp_directory dir;
    struct mp_localdb local;
    struct mp_idmap_result res;
};

static void map(struct mapped *mp, const char *extra, enum mp_dir_source source,
                const struct member *m, size_t n, const struct mp_cache_data *old)
{
    static const struct mp_cache_data none = {0};

    config(&mp->cfg, extra);
    load_dir(&mp->dir, &mp->cfg, source, m, n);
    assert_int_equal(mp_localdb_load(&mp->local, passwd_path, group_path, &logger), 0);
    assert_int_equal(
        mp_idmap_build(&mp->cfg, &mp->dir, old ? old : &none, &mp->local, 1000, &mp->res, &logger),
        0);
}

static void unmap(struct mapped *mp)
{
    mp_idmap_result_free(&mp->res);
    mp_localdb_free(&mp->local);
    mp_directory_free(&mp->dir);
    mp_config_free(&mp->cfg);
}

static const struct mp_cache_user *user(const struct mapped *mp, const char *name)
{
    return mp_cache_find_user(&mp->res.data, name);
}

static uint32_t uid_of_profile(const struct mapped *mp, const char *pid)
{
    char ref[64];

    snprintf(ref, sizeof(ref), "Practitioner/%s", pid);
    for (size_t i = 0; i < mp->res.data.nusers; i++)
        if (strcmp(mp->res.data.users[i].profile, ref) == 0)
            return mp->res.data.users[i].uid;
    return 0;
}

static const char *skip_reason(const struct mapped *mp, const char *name)
{
    for (size_t i = 0; i < mp->res.nskipped; i++)
        if (mp->res.skipped[i].name && strcmp(mp->res.skipped[i].name, name) == 0)
            return mp->res.skipped[i].reason;
    return NULL;
}

/* ---- the uid function ---- */

static void uid_function_is_pinned(void **state)
{
    (void)state;
    /* Values computed independently (Python hashlib, tests/sync/synctest.py). */
    assert_true(mp_idmap_uid_hash(ALICE_ID) == 6571486482577654843ull);
    assert_int_equal(mp_idmap_uid_probe(ALICE_ID, 200000, 299999, 0), 254843);
    assert_int_equal(mp_idmap_uid_probe(ALICE_ID, 200000, 299999, 1), 254844);
    /* The sequence wraps around inside the range. */
    assert_int_equal(mp_idmap_uid_probe(ALICE_ID, 200000, 299999, 299999 - 254843), 299999);
    assert_int_equal(mp_idmap_uid_probe(ALICE_ID, 200000, 299999, 299999 - 254843 + 1), 200000);
    /* Upper-case copies of an id map the same. */
    assert_int_equal(mp_idmap_uid_probe("7618B02A-AACE-465E-96D6-68F936DCF006", 200000, 299999, 0),
                     254843);
}

static void uid_function_range(void **state)
{
    char id[40];

    (void)state;
    for (unsigned i = 0; i < 2000; i++) {
        uint32_t u;
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012u", i);
        u = mp_idmap_uid_probe(id, 200000, 299999, i % 7);
        assert_true(u >= 200000 && u <= 299999);
        assert_int_equal(mp_idmap_uid_probe(id, 5000, 5000, i), 5000);
        u = mp_idmap_uid_probe(id, 1000, 2147483647u, 0);
        assert_true(u >= 1000 && u <= 2147483647u);
    }
}

/* id1 -> 1000, id2 -> 1002, id3 -> 1001, id4 -> 1000 (see synctest.uid_probe). */
static const struct member four[] = {
    {MID(4), ID(4), "d@example.com", NULL, false, NULL, NULL, NULL},
    {MID(2), ID(2), "b@example.com", NULL, false, NULL, NULL, NULL},
    {MID(1), ID(1), "a@example.com", NULL, false, NULL, NULL, NULL},
    {MID(3), ID(3), "c@example.com", NULL, false, NULL, NULL, NULL},
};

static void collisions_resolve_in_id_order(void **state)
{
    struct mapped mp;

    (void)state;
    map(&mp, "uid_min = 1000\nuid_max = 1003\n", MP_DIR_SOURCE_MEMBERSHIPS, four, 4, NULL);
    assert_int_equal(mp.res.data.nusers, 4);
    assert_int_equal(uid_of_profile(&mp, ID(1)), 1000);
    assert_int_equal(uid_of_profile(&mp, ID(2)), 1002);
    assert_int_equal(uid_of_profile(&mp, ID(3)), 1001);
    assert_int_equal(uid_of_profile(&mp, ID(4)), 1003); /* probes 1000, 1001, 1002, 1003 */
    assert_int_equal(mp.res.data.nreservations, 4);
    unmap(&mp);
}

static void range_exhausted_skips(void **state)
{
    struct mapped mp;

    (void)state;
    map(&mp, "uid_min = 1000\nuid_max = 1002\n", MP_DIR_SOURCE_MEMBERSHIPS, four, 4, NULL);
    assert_int_equal(mp.res.data.nusers, 3);
    assert_int_equal(uid_of_profile(&mp, ID(4)), 0);
    assert_non_null(strstr(skip_reason(&mp, "d"), "no free uid"));
    unmap(&mp);
}

static void reservations_pin_uids(void **state)
{
    struct mp_cache_reservation resv[] = {{"Practitioner/" ID(4), 1000},
                                          {"Practitioner/" ID(9), 1002}};
    struct mp_cache_data old = {0};
    struct mapped mp;

    (void)state;
    old.reservations = resv;
    old.nreservations = 2;
    map(&mp, "uid_min = 1000\nuid_max = 1004\n", MP_DIR_SOURCE_MEMBERSHIPS, four, 4, &old);
    /* id4 keeps its reserved 1000 (its hash start is 1002); id9 left, but 1002
     * stays its.  In 1000..1004 the starts are id1 1002, id2 1004, id3 1002. */
    assert_int_equal(uid_of_profile(&mp, ID(4)), 1000);
    assert_int_equal(uid_of_profile(&mp, ID(1)), 1003);
    assert_int_equal(uid_of_profile(&mp, ID(2)), 1004);
    assert_int_equal(uid_of_profile(&mp, ID(3)), 1001); /* 1002, 1003, 1004, wrap, 1000 */
    assert_int_equal(mp.res.data.nreservations, 5);
    unmap(&mp);
}

static void local_ids_are_avoided(void **state)
{
    struct mapped mp;

    (void)state;
    local_files("root:x:0:0::/root:/bin/sh\nsvc:x:1000:1001::/:/bin/sh\n", "root:x:0:\n");
    map(&mp, "uid_min = 1000\nuid_max = 1005\n", MP_DIR_SOURCE_MEMBERSHIPS, four, 4, NULL);
    /* 1000 (uid) and 1001 (gid) are local; in 1000..1005 the starts are
     * id1 1004, id2 1004, id3 1003, id4 1004. */
    assert_int_equal(uid_of_profile(&mp, ID(1)), 1004);
    assert_int_equal(uid_of_profile(&mp, ID(2)), 1005);
    assert_int_equal(uid_of_profile(&mp, ID(3)), 1003);
    assert_int_equal(uid_of_profile(&mp, ID(4)), 1002); /* 1004, 1005, wrap, 1000, 1001 local */
    unmap(&mp);
}

static void pinned_identifier_uid(void **state)
{
    const struct member m[] = {
        {MID(1), ID(1), "a@example.com", NULL, false, NULL,
         "[{\"system\":\"urn:uid\",\"value\":\"4242\"}]", NULL},
        {MID(2), ID(2), "b@example.com", NULL, false, NULL, NULL,
         "[{\"system\":\"urn:uid\",\"value\":\"4343\"}]"},
        {MID(3), ID(3), "c@example.com", NULL, false, NULL, NULL, NULL},
        {MID(4), ID(4), "d@example.com", NULL, false, NULL,
         "[{\"system\":\"urn:uid\",\"value\":\"99\"}]", NULL},
        {MID(5), ID(5), "e@example.com", NULL, false, NULL,
         "[{\"system\":\"urn:uid\",\"value\":\"4242\"}]", NULL},
    };
    struct mapped mp;

    (void)state;
    map(&mp, "uid_source = identifier:urn:uid\nuid_min = 4000\nuid_max = 4999\n",
        MP_DIR_SOURCE_MEMBERSHIPS, m, 5, NULL);
    assert_int_equal(uid_of_profile(&mp, ID(1)), 4242);
    assert_int_equal(uid_of_profile(&mp, ID(2)), 4343); /* membership identifier */
    assert_non_null(strstr(skip_reason(&mp, "c"), "no identifier"));
    assert_non_null(strstr(skip_reason(&mp, "d"), "outside"));
    assert_non_null(strstr(skip_reason(&mp, "e"), "taken"));
    assert_int_equal(mp.res.data.nusers, 2);
    unmap(&mp);
}

/* ---- names ---- */

static void names_from_email(void **state)
{
    char out[64], why[160];

    (void)state;
    assert_int_equal(
        mp_idmap_name_from_email("Alice.Smith@Example.COM", out, sizeof(out), why, sizeof(why)), 0);
    assert_string_equal(out, "alice.smith");
    assert_int_equal(mp_idmap_name_from_email("a+b@x.org", out, sizeof(out), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "not a valid"));
    assert_int_equal(mp_idmap_name_from_email("1abc@x.org", out, sizeof(out), why, sizeof(why)),
                     -1);
    assert_int_equal(mp_idmap_name_from_email("-x@x.org", out, sizeof(out), why, sizeof(why)), -1);
    assert_int_equal(mp_idmap_name_from_email("a..b@x.org", out, sizeof(out), why, sizeof(why)),
                     -1);
    assert_int_equal(
        mp_idmap_name_from_email("j\xc3\xb6rg@x.org", out, sizeof(out), why, sizeof(why)), -1);
    assert_int_equal(mp_idmap_name_from_email("abcdefghijabcdefghijabcdefghijabc@x.org", out,
                                              sizeof(out), why, sizeof(why)),
                     -1);
    assert_int_equal(mp_idmap_name_from_email("abcdefghijabcdefghijabcdefghijab@x.org", out,
                                              sizeof(out), why, sizeof(why)),
                     0);
    assert_int_equal(mp_idmap_name_from_email("noat", out, sizeof(out), why, sizeof(why)), -1);
    assert_int_equal(mp_idmap_name_from_email("@x.org", out, sizeof(out), why, sizeof(why)), -1);
}

static void name_sources(void **state)
{
    const struct member m[] = {
        {MID(1), ID(1), "Alice@example.com", NULL, false, NULL,
         "[{\"system\":\"urn:login\",\"value\":\"asmith\"}]", NULL},
        {MID(2), ID(2), "bob@example.com", NULL, false, NULL,
         "[{\"system\":\"urn:login\",\"value\":\"BJones\"}]", NULL},
        {MID(3), ID(3), "carol@example.com", NULL, false, NULL, NULL, NULL},
    };
    struct mapped mp;

    (void)state;
    map(&mp, NULL, MP_DIR_SOURCE_MEMBERSHIPS, m, 3, NULL);
    assert_non_null(user(&mp, "alice"));
    assert_string_equal(user(&mp, "alice")->email, "Alice@example.com");
    unmap(&mp);
    map(&mp, "username_source = identifier:urn:login\n", MP_DIR_SOURCE_MEMBERSHIPS, m, 3, NULL);
    assert_non_null(user(&mp, "asmith"));
    /* Identifier names are taken as is: upper case is refused, not lowered. */
    assert_null(user(&mp, "bjones"));
    assert_int_equal(mp.res.data.nusers, 1);
    assert_int_equal(mp.res.nskipped, 2);
    unmap(&mp);
}

static void name_collisions(void **state)
{
    const struct member m[] = {
        {MID(1), ID(1), "dup@one.example", NULL, false, NULL, NULL, NULL},
        {MID(2), ID(2), "dup@two.example", NULL, false, NULL, NULL, NULL},
        {MID(3), ID(3), "solo@example.com", NULL, false, NULL, NULL, NULL},
    };
    struct mp_cache_user holder = {.name = "dup",
                                   .uid = 5000,
                                   .gid = 5000,
                                   .profile = "Practitioner/" ID(2),
                                   .email = "dup@two.example"};
    struct mp_cache_reservation resv = {"Practitioner/" ID(2), 200001};
    struct mp_cache_data old = {0};
    struct mapped mp;

    (void)state;
    map(&mp, NULL, MP_DIR_SOURCE_MEMBERSHIPS, m, 3, NULL);
    assert_null(user(&mp, "dup"));
    assert_non_null(user(&mp, "solo"));
    assert_int_equal(mp.res.nskipped, 2);
    unmap(&mp);
    old.users = &holder;
    old.nusers = 1;
    old.reservations = &resv;
    old.nreservations = 1;
    map(&mp, NULL, MP_DIR_SOURCE_MEMBERSHIPS, m, 3, &old);
    assert_non_null(user(&mp, "dup"));
    assert_string_equal(user(&mp, "dup")->profile, "Practitioner/" ID(2));
    assert_int_equal(user(&mp, "dup")->uid, 200001);
    assert_non_null(strstr(skip_reason(&mp, "dup"), "current holder"));
    unmap(&mp);
}

static void local_name_collisions(void **state)
{
    const struct member m[] = {
        {MID(1), ID(1), "root@example.com", NULL, false, NULL, NULL, NULL},
        {MID(2), ID(2), "staff@example.com", NULL, false, NULL, NULL, NULL},
        {MID(3), ID(3), "medadmin@example.com", NULL, false, NULL, NULL, NULL},
        {MID(4), ID(4), "ok@example.com", NULL, false, NULL, NULL, NULL},
    };
    struct mapped mp;

    (void)state;
    local_files("root:x:0:0::/root:/bin/sh\n", "root:x:0:\nstaff:x:50:\n");
    map(&mp, "admin_group = medadmin\nadmin_gid = 7000\n", MP_DIR_SOURCE_MEMBERSHIPS, m, 4, NULL);
    assert_non_null(strstr(skip_reason(&mp, "root"), "passwd"));
    assert_non_null(strstr(skip_reason(&mp, "staff"), "group"));
    assert_non_null(strstr(skip_reason(&mp, "medadmin"), "configured group"));
    assert_non_null(user(&mp, "ok"));
    unmap(&mp);
    assert_true(mp_group_file_has(group_path, "staff"));
    assert_false(mp_group_file_has(group_path, "staf"));
    assert_false(mp_group_file_has("/nonexistent/group", "staff"));
}

/* ---- gecos, home ---- */

static void gecos_sanitising(void **state)
{
    char out[MP_GECOS_MAX + 1], big[600];

    (void)state;
    mp_idmap_gecos("Alice Smith", out, sizeof(out));
    assert_string_equal(out, "Alice Smith");
    mp_idmap_gecos("Eve:Mallory\nroot::0:0", out, sizeof(out));
    assert_string_equal(out, "Eve Mallory root 0 0");
    mp_idmap_gecos("Smith, John\t\r\x7f"
                   "x",
                   out, sizeof(out));
    assert_string_equal(out, "Smith John x");
    mp_idmap_gecos("  J\xc3\xb6rg  M\xc3\xbcller  ", out, sizeof(out));
    assert_string_equal(out, "J\xc3\xb6rg M\xc3\xbcller");
    /* invalid UTF-8: stray byte, overlong, surrogate, truncated sequence */
    mp_idmap_gecos("a\xff"
                   "b\xc0\xaf"
                   "c\xed\xa0\x80"
                   "d\xe2\x82",
                   out, sizeof(out));
    assert_string_equal(out, "a?b??c???d??");
    /* C1 controls (U+0085 NEL) */
    mp_idmap_gecos("x\xc2\x85y", out, sizeof(out));
    assert_string_equal(out, "x y");
    mp_idmap_gecos(NULL, out, sizeof(out));
    assert_string_equal(out, "");
    /* Long names are cut at a character boundary. */
    for (size_t i = 0; i + 2 < sizeof(big); i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[sizeof(big) - 1 - (sizeof(big) - 1) % 2] = '\0';
    mp_idmap_gecos(big, out, sizeof(out));
    assert_int_equal(strlen(out), MP_GECOS_MAX);
    mp_idmap_gecos(big, out, 6);
    assert_string_equal(out, "\xc3\xa9\xc3\xa9");
}

static void home_template(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(mp_idmap_home("/home/%u", "alice", out, sizeof(out)), 0);
    assert_string_equal(out, "/home/alice");
    assert_int_equal(mp_idmap_home("/srv/%%/%u/x", "bob", out, sizeof(out)), 0);
    assert_string_equal(out, "/srv/%/bob/x");
    assert_int_equal(mp_idmap_home("/home/%u", "alice", out, 8), -1);
}

static void gecos_and_home_in_entries(void **state)
{
    const struct member m[] = {
        {MID(1), ID(1), "a@example.com", NULL, false,
         "[{\"use\":\"old\",\"text\":\"Old Name\"},{\"use\":\"official\",\"given\":[\"Ann\","
         "\"B\"],\"family\":\"O:Neil\\nroot\"}]",
         NULL, NULL},
        {MID(2), ID(2), "b@example.com", NULL, false, NULL, NULL, NULL},
    };
    struct mapped mp;

    (void)state;
    map(&mp, "home_template = /u/%u\nshell = /bin/zsh\n", MP_DIR_SOURCE_MEMBERSHIPS, m, 2, NULL);
    assert_string_equal(user(&mp, "a")->gecos, "Ann B O Neil root");
    assert_string_equal(user(&mp, "b")->gecos, "Display 1"); /* membership profile display */
    assert_string_equal(user(&mp, "a")->home, "/u/a");
    assert_string_equal(user(&mp, "a")->shell, "/bin/zsh");
    unmap(&mp);
}

/* ---- groups and membership states ---- */

static void groups(void **state)
{
    const struct member m[] = {
        {MID(1), ID(1), "a@example.com", NULL, true, NULL, NULL, NULL},
        {MID(2), ID(2), "b@example.com", "true", false, NULL, NULL, NULL},
    };
    struct mapped mp;

    (void)state;
    map(&mp, "admin_group = medadmin\nadmin_gid = 7000\n", MP_DIR_SOURCE_MEMBERSHIPS, m, 2, NULL);
    assert_int_equal(mp.res.data.ngroups, 3);
    assert_int_equal(user(&mp, "a")->gid, user(&mp, "a")->uid);
    assert_string_equal(mp.res.data.groups[2].name, "medadmin");
    assert_int_equal(mp.res.data.groups[2].nmembers, 1);
    assert_string_equal(mp.res.data.groups[2].members[0], "a");
    unmap(&mp);
    map(&mp, "primary_group = staff\nprimary_gid = 6000\n", MP_DIR_SOURCE_MEMBERSHIPS, m, 2, NULL);
    assert_int_equal(mp.res.data.ngroups, 1);
    assert_int_equal(user(&mp, "b")->gid, 6000);
    unmap(&mp);
    /* A shared group that exists locally is not emitted. */
    local_files("root:x:0:0::/root:/bin/sh\n", "root:x:0:\nstaff:x:6000:\n");
    map(&mp, "primary_group = staff\nprimary_gid = 6000\n", MP_DIR_SOURCE_MEMBERSHIPS, m, 2, NULL);
    assert_int_equal(mp.res.data.ngroups, 0);
    assert_int_equal(mp.res.data.nusers, 2);
    unmap(&mp);
}

static enum mp_membership_state state_of(const struct mapped *mp, const char *name)
{
    for (size_t i = 0; i < mp->res.nstates; i++)
        if (strcmp(mp->res.states[i].name, name) == 0)
            return mp->res.states[i].state;
    return (enum mp_membership_state) - 1;
}

static void membership_states(void **state)
{
    const struct member m[] = {
        {MID(1), ID(1), "a@example.com", NULL, false, NULL, NULL, NULL},
        {MID(2), ID(2), "b@example.com", "false", false, NULL, NULL, NULL},
        {MID(3), ID(3), "c@example.com", "\"yes\"", false, NULL, NULL, NULL},
    };
    struct mp_cache_user gone = {.name = "gone",
                                 .uid = 200009,
                                 .gid = 200009,
                                 .profile = "Practitioner/" ID(9),
                                 .email = "g@example.com"};
    struct mp_cache_reservation resv = {"Practitioner/" ID(9), 200009};
    struct mp_cache_data old = {0};
    struct mapped mp;

    (void)state;
    old.users = &gone;
    old.nusers = 1;
    old.reservations = &resv;
    old.nreservations = 1;
    map(&mp, NULL, MP_DIR_SOURCE_MEMBERSHIPS, m, 3, &old);
    assert_int_equal(mp.res.data.nusers, 1); /* b inactive; c malformed "active" */
    assert_int_equal(mp.dir.malformed, 1);
    assert_int_equal(mp.res.inactive, 1);
    assert_int_equal(state_of(&mp, "a"), MP_MEMBERSHIP_ACTIVE);
    assert_int_equal(state_of(&mp, "b"), MP_MEMBERSHIP_INACTIVE);
    assert_int_equal(state_of(&mp, "gone"), MP_MEMBERSHIP_ABSENT);
    assert_int_equal(mp.res.data.nreservations, 2); /* gone's uid stays reserved */
    unmap(&mp);
    /* The Practitioner source knows no membership state. */
    map(&mp, NULL, MP_DIR_SOURCE_PRACTITIONERS, m, 3, &old);
    assert_int_equal(mp.res.nstates, 0);
    assert_int_equal(mp.res.data.nusers, 3);
    assert_null(user(&mp, "a")->membership_id);
    unmap(&mp);
}

/* ---- page parsing ---- */

static void page_parsing(void **state)
{
    struct mp_config cfg;
    struct mp_directory dir;
    char *next = NULL, reason[160];
    size_t added = 0;
    const char *other =
        "{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":"
        "\"ProjectMembership\",\"id\":\"" MID(
            7) "\",\"project\":{\"reference\":"
               "\"Project/1fc16d77-8591-4505-a1fe-3d126c1e1f6b\"},\"profile\":{"
               "\"reference\":\"Practitioner/" ID(
                   7) "\"}}},{\"resource\":{"
                      "\"resourceType\":\"ProjectMembership\",\"id\":\"" MID(
                          8) "\",\"project\""
                             ":{\"reference\":\"Project/" PROJECT "\"},\"profile\":{\"reference\":"
                             "\"Patient/" ID(
                                 8) "\"}}},{\"resource\":{\"resourceType\":"
                                    "\"OperationOutcome\",\"id\":\"x\"}},{\"search\":{}},7]}";
    char *body;

    (void)state;
    config(&cfg, NULL);
    memset(&dir, 0, sizeof(dir));
    body = bundle(four, 2, "https://medplum.example.org/fhir/R4/ProjectMembership?_cursor=2-1");
    assert_int_equal(mp_directory_add_page(&dir, &cfg, body, strlen(body), &next, &added, &logger,
                                           reason, sizeof(reason)),
                     0);
    assert_int_equal(added, 2);
    assert_string_equal(next, "https://medplum.example.org/fhir/R4/ProjectMembership?_cursor=2-1");
    free(next);
    /* The same page again adds nothing (a cursor that repeats its edge). */
    assert_int_equal(mp_directory_add_page(&dir, &cfg, body, strlen(body), &next, &added, &logger,
                                           reason, sizeof(reason)),
                     0);
    assert_int_equal(added, 0);
    free(next);
    free(body);
    /* Other projects, non-Practitioner profiles and other resources are ignored. */
    assert_int_equal(mp_directory_add_page(&dir, &cfg, other, strlen(other), &next, &added, &logger,
                                           reason, sizeof(reason)),
                     0);
    assert_int_equal(added, 0);
    assert_null(next);
    assert_int_equal(dir.malformed, 2);
    assert_int_equal(mp_directory_finish(&dir), 0);
    assert_int_equal(dir.nentries, 2);
    assert_string_equal(dir.entries[0].telecom_email, "d@example.com");
    assert_true(dir.entries[0].practitioner_found);
    /* Not a Bundle, or entry not an array: the whole fetch fails. */
    assert_int_equal(mp_directory_add_page(&dir, &cfg, "{\"resourceType\":\"OperationOutcome\"}",
                                           35, &next, &added, &logger, reason, sizeof(reason)),
                     -1);
    assert_int_equal(mp_directory_add_page(&dir, &cfg, "{\"resourceType\":\"Bundle\",\"entry\":{}}",
                                           35, &next, &added, &logger, reason, sizeof(reason)),
                     -1);
    assert_int_equal(mp_directory_add_page(&dir, &cfg, "<html>", 6, &next, &added, &logger, reason,
                                           sizeof(reason)),
                     -1);
    mp_directory_free(&dir);
    mp_config_free(&cfg);
}

static void wrong_field_types(void **state)
{
    const struct member m[] = {
        {MID(1), ID(1), "a@example.com", "1", false, NULL, NULL, NULL},
        {MID(2), ID(2), "b@example.com", NULL, false, "{\"text\":\"x\"}", NULL, NULL},
        {MID(3), ID(3), "c@example.com", NULL, false, NULL, "\"nope\"", NULL},
        {MID(4), ID(4), "d@example.com", NULL, false, "[{\"given\":[1,\"D\"],\"family\":2}]",
         "[{\"system\":1,\"value\":\"v\"},3]", NULL},
    };
    struct mapped mp;

    (void)state;
    map(&mp, NULL, MP_DIR_SOURCE_MEMBERSHIPS, m, 4, NULL);
    /* a: membership active not a bool; b, c: Practitioner fields of the wrong type
     * (their memberships stay, without Practitioner data); d: odd items skipped. */
    assert_null(user(&mp, "a"));
    assert_int_equal(mp.dir.malformed, 3);
    assert_non_null(user(&mp, "b")); /* from user.display */
    assert_string_equal(user(&mp, "b")->gecos, "Display 1");
    assert_string_equal(user(&mp, "d")->gecos, "D");
    unmap(&mp);
}

/* ---- after a login ---- */

static void record_login(void **state)
{
    struct mp_config cfg;
    struct mp_cache_data d;
    const struct mp_cache_user *u;

    (void)state;
    config(&cfg, NULL);
    assert_int_equal(mp_idmap_record_login_files(&cfg, "alice", "alice@example.com",
                                                 "Practitioner/" ALICE_ID, "Alice: Smith\n",
                                                 passwd_path, group_path, &logger),
                     0);
    assert_int_equal(mp_cache_load(cfg.cache_dir, &d, &logger), 0);
    u = mp_cache_find_user(&d, "alice");
    assert_non_null(u);
    assert_int_equal(u->uid, 254843); /* the sync's uid */
    assert_int_equal(u->gid, 254843);
    assert_string_equal(u->gecos, "Alice Smith");
    assert_string_equal(u->home, "/home/alice");
    assert_int_equal(d.ngroups, 1);
    assert_int_equal(d.nreservations, 1);
    mp_cache_data_free(&d);
    /* Again: nothing to do.  Another name for the same Practitioner: left alone. */
    assert_int_equal(mp_idmap_record_login_files(&cfg, "alice", "alice@example.com",
                                                 "Practitioner/" ALICE_ID, "Alice", passwd_path,
                                                 group_path, &logger),
                     0);
    assert_int_equal(mp_idmap_record_login_files(&cfg, "asmith", "alice@example.com",
                                                 "Practitioner/" ALICE_ID, "Alice", passwd_path,
                                                 group_path, &logger),
                     0);
    assert_int_equal(mp_cache_load(cfg.cache_dir, &d, &logger), 0);
    assert_int_equal(d.nusers, 1);
    mp_cache_data_free(&d);
    /* The name bound to another Practitioner, a local name, a bad profile: refused. */
    assert_int_equal(mp_idmap_record_login_files(&cfg, "alice", "x@example.com",
                                                 "Practitioner/" ID(1), "X", passwd_path,
                                                 group_path, &logger),
                     -1);
    assert_int_equal(mp_idmap_record_login_files(&cfg, "root", "root@example.com",
                                                 "Practitioner/" ID(2), "R", passwd_path,
                                                 group_path, &logger),
                     -1);
    assert_int_equal(mp_idmap_record_login_files(&cfg, "bob", "bob@example.com", "Patient/" ID(3),
                                                 "B", passwd_path, group_path, &logger),
                     -1);
    mp_config_free(&cfg);
    /* With pinned uids only the sync writes entries. */
    config(&cfg, "uid_source = identifier:urn:uid\n");
    assert_int_equal(mp_idmap_record_login_files(&cfg, "carol", "carol@example.com",
                                                 "Practitioner/" ID(3), "C", passwd_path,
                                                 group_path, &logger),
                     0);
    assert_int_equal(mp_cache_load(cfg.cache_dir, &d, &logger), 0);
    assert_null(mp_cache_find_user(&d, "carol"));
    mp_cache_data_free(&d);
    mp_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(uid_function_is_pinned, setup, teardown),
        cmocka_unit_test_setup_teardown(uid_function_range, setup, teardown),
        cmocka_unit_test_setup_teardown(collisions_resolve_in_id_order, setup, teardown),
        cmocka_unit_test_setup_teardown(range_exhausted_skips, setup, teardown),
        cmocka_unit_test_setup_teardown(reservations_pin_uids, setup, teardown),
        cmocka_unit_test_setup_teardown(local_ids_are_avoided, setup, teardown),
        cmocka_unit_test_setup_teardown(pinned_identifier_uid, setup, teardown),
        cmocka_unit_test_setup_teardown(names_from_email, setup, teardown),
        cmocka_unit_test_setup_teardown(name_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(name_collisions, setup, teardown),
        cmocka_unit_test_setup_teardown(local_name_collisions, setup, teardown),
        cmocka_unit_test_setup_teardown(gecos_sanitising, setup, teardown),
        cmocka_unit_test_setup_teardown(home_template, setup, teardown),
        cmocka_unit_test_setup_teardown(gecos_and_home_in_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(groups, setup, teardown),
        cmocka_unit_test_setup_teardown(membership_states, setup, teardown),
        cmocka_unit_test_setup_teardown(page_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_field_types, setup, teardown),
        cmocka_unit_test_setup_teardown(record_login, setup, teardown),
    };

    return cmocka_run_group_tests_name("idmap", tests, NULL, NULL);
}
