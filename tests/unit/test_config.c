/* pam_medplum.conf parsing: defaults, every kind of error with its line, file security. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mp_config.h"

#define PROJECT "ce04dfeb-96a9-49e7-abb8-098580eeed12"
#define GOOD "base_url = https://medplum.example.org\nproject_id = " PROJECT "\n"

static char logbuf[8192];

static void capture(void *ctx, int priority, const char *message)
{
    (void)ctx;
    (void)priority;
    strncat(logbuf, message, sizeof(logbuf) - strlen(logbuf) - 2);
    strcat(logbuf, "\n");
}

static const mp_logger logger = {capture, NULL, true};

static int parse(struct mp_config *cfg, const char *text)
{
    logbuf[0] = '\0';
    assert_int_equal(mp_config_init(cfg), 0);
    return mp_config_parse(cfg, "t.conf", text, &logger);
}

static void defaults_and_minimal(void **state)
{
    struct mp_config c;

    (void)state;
    assert_int_equal(parse(&c, GOOD), 0);
    assert_string_equal(c.base_url, "https://medplum.example.org/"); /* slash added */
    assert_string_equal(c.project_id, PROJECT);
    assert_null(c.client_id);
    assert_int_equal(c.connect_timeout, 5);
    assert_int_equal(c.timeout, 20);
    assert_string_equal(c.allowed_profile_types[0], "Practitioner");
    assert_null(c.allowed_profile_types[1]);
    assert_string_equal(c.cache_dir, "/var/lib/pam_medplum");
    assert_false(c.allow_insecure_http);
    assert_int_equal(c.offline_ttl, 259200);
    assert_int_equal(c.membership_max_age, 3600);
    mp_config_free(&c);
}

static void full_example(void **state)
{
    struct mp_config c;

    (void)state;
    assert_int_equal(parse(&c, "# comment\n\n  base_url=https://h:8443/medplum/  \n"
                               "project_id = " PROJECT "\n"
                               "client_id = 4eb5fd55-d38f-4205-89b4-13c4b49e3288\n"
                               "timeout = 30\nconnect_timeout=2\n"
                               "allowed_profile_types = Practitioner, RelatedPerson\n"
                               "email_domain = lab.example\n"),
                     0);
    assert_string_equal(c.base_url, "https://h:8443/medplum/");
    assert_string_equal(c.allowed_profile_types[1], "RelatedPerson");
    assert_true(mp_config_profile_type_allowed(&c, "RelatedPerson"));
    assert_false(mp_config_profile_type_allowed(&c, "Patient"));
    assert_int_equal(c.timeout, 30);
    mp_config_free(&c);
}

struct bad_case {
    const char *text;
    const char *expect; /* must appear in the log */
};

static void every_error_is_reported_with_its_line(void **state)
{
    static const struct bad_case cases[] = {
        {GOOD "colour = blue\n", "t.conf:3: unknown key 'colour'"},
        {GOOD "timeout\n", "t.conf:3: expected 'key = value'"},
        {GOOD "timeout = \n", "t.conf:3: timeout has no value"},
        {GOOD "timeout = ten\n", "t.conf:3: timeout must be a non-negative integer"},
        {GOOD "timeout = 0\n", "t.conf:3: timeout is out of range (1 to 300)"},
        {GOOD "email_domain = lab.example   # our lab\n", "trailing comment"},
        {GOOD "home_template = /home/%u # per user\n", "trailing comment"},
        {GOOD "email_domain = @lab.example\n", "must be a domain name"},
        {GOOD "email_domain = \"lab.example\"\n", "must be a domain name"},
        {GOOD "email_domain = lab\n", "must be a domain name"},
        {GOOD "shell = /bin/ba:sh\n", "without ':' or spaces"},
        {GOOD "timeout = -5\n", "t.conf:3: timeout must be a non-negative integer"},
        {GOOD "timeout = 99999999999999999999\n", "t.conf:3: timeout must be"},
        {GOOD "timeout = 10\ntimeout = 11\n", "t.conf:4: timeout is set twice"},
        {GOOD "allow_insecure_http = maybe\n", "must be yes or no"},
        {GOOD "client_id = not-a-uuid\n", "client_id must be a Medplum id"},
        {GOOD "cache_dir = relative/dir\n", "cache_dir must be an absolute path"},
        {GOOD "allowed_profile_types = practitioner\n", "comma list of FHIR resource types"},
        {GOOD "allowed_profile_types = ,\n", "comma list of FHIR resource types"},
        {GOOD "home_template = /home/%s\n", "only %u"},
        {GOOD "home_template = /home/../%u\n", "'..'"},
        {GOOD "host_auth = kerberos\n", "client_credentials or basic"},
        {GOOD "username_source = phone\n", "identifier:<system>"},
        {GOOD "uid_min = 500000\nuid_max = 400000\n", "uid_min is greater than uid_max"},
        {GOOD "uid_min = 10\n", "uid_min is out of range"},
        {GOOD "email_domain = a\x01b\n", "control characters"},
        {GOOD "admin_group = Bad:Name\n", "valid group name"},
        {GOOD "admin_group = labadmins\n", "needs admin_gid"},
        {"project_id = " PROJECT "\n", "required key base_url is missing"},
        {"base_url = https://x.example\n", "required key project_id is missing"},
        {"base_url = ftp://x\nproject_id = " PROJECT "\n", "must start with https://"},
        {"base_url = https://u:p@x\nproject_id = " PROJECT "\n", "not a valid server URL"},
        {"base_url = http://127.0.0.1:8103/\nproject_id = " PROJECT "\n", "plain http"},
        {"base_url = http://medplum.example.org/\nproject_id = " PROJECT
         "\nallow_insecure_http = yes\n",
         "only allowed for a loopback"},
    };
    struct mp_config c;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int problems = parse(&c, cases[i].text);
        if (problems == 0 || strstr(logbuf, cases[i].expect) == NULL)
            fail_msg("case %zu: problems=%d, log:\n%s(wanted '%s')", i, problems, logbuf,
                     cases[i].expect);
        mp_config_free(&c);
    }
}

static void several_errors_all_reported(void **state)
{
    struct mp_config c;

    (void)state;
    assert_int_equal(parse(&c, "a = 1\nb = 2\nbase_url = https://x.example\n"), 3);
    assert_non_null(strstr(logbuf, "t.conf:1:"));
    assert_non_null(strstr(logbuf, "t.conf:2:"));
    assert_non_null(strstr(logbuf, "project_id is missing"));
    mp_config_free(&c);
    /* a required key with a bad value is one problem, not also "missing" */
    assert_int_equal(parse(&c, "base_url = https://x.example\nproject_id = nope\n"), 1);
    assert_null(strstr(logbuf, "missing"));
    mp_config_free(&c);
}

static void insecure_http_only_loopback(void **state)
{
    const char *loop[] = {"http://127.0.0.1:1/", "http://localhost/", "http://[::1]:8103/",
                          "http://127.9.9.9/"};
    const char *not_loop[] = {"http://128.0.0.1/", "http://localhost.evil.example/",
                              "http://[::2]/", "http://10.0.0.1/"};
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        assert_true(mp_url_host_is_loopback(loop[i]));
        assert_false(mp_url_host_is_loopback(not_loop[i]));
    }
}

static void secret_value_never_logged(void **state)
{
    struct mp_config c;

    (void)state;
    assert_int_not_equal(parse(&c, GOOD "host_client_secret = tinyval\n"), 0);
    assert_null(strstr(logbuf, "tinyval"));
    assert_non_null(strstr(logbuf, "host_client_secret is too short"));
    mp_config_free(&c);
}

static char *write_file(const char *text, mode_t mode)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/mpcfg.XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

static int load(const char *path, struct mp_config *c)
{
    logbuf[0] = '\0';
    assert_int_equal(mp_config_init(c), 0);
    return mp_config_load(c, path, &logger);
}

static void file_permissions(void **state)
{
    struct mp_config c;
    char *p;
    char link[80];

    (void)state;
    p = write_file(GOOD, 0644);
    assert_int_equal(load(p, &c), 0);
    mp_config_free(&c);
    chmod(p, 0664);
    assert_int_not_equal(load(p, &c), 0);
    assert_non_null(strstr(logbuf, "writable by group or others"));
    mp_config_free(&c);
    chmod(p, 0646);
    assert_int_not_equal(load(p, &c), 0);
    mp_config_free(&c);
    /* symlinks are refused (O_NOFOLLOW) */
    chmod(p, 0644);
    snprintf(link, sizeof(link), "%s.lnk", p);
    assert_int_equal(symlink(p, link), 0);
    assert_int_not_equal(load(link, &c), 0);
    assert_non_null(strstr(logbuf, "symbolic link"));
    mp_config_free(&c);
    unlink(link);
    unlink(p);
    /* a secret-bearing file must not be readable by others */
    p = write_file(GOOD "host_client_secret = 0123456789abcdef0123\n", 0644);
    assert_int_not_equal(load(p, &c), 0);
    assert_non_null(strstr(logbuf, "holds a secret"));
    mp_config_free(&c);
    chmod(p, 0600);
    assert_int_equal(load(p, &c), 0);
    mp_config_free(&c);
    unlink(p);
    /* missing file */
    assert_int_not_equal(load("/nonexistent/pam_medplum.conf", &c), 0);
    mp_config_free(&c);
}

static void oversized_and_nul_files_refused(void **state)
{
    struct mp_config c;
    static char big[MP_CONFIG_MAX_SIZE + 100];
    char *p;
    int fd;

    (void)state;
    memset(big, '#', sizeof(big) - 1);
    p = write_file(big, 0644);
    assert_int_not_equal(load(p, &c), 0);
    assert_non_null(strstr(logbuf, "larger than"));
    mp_config_free(&c);
    unlink(p);
    p = write_file(GOOD, 0644);
    fd = open(p, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "x\0y\n", 4), 4);
    close(fd);
    assert_int_not_equal(load(p, &c), 0);
    assert_non_null(strstr(logbuf, "NUL"));
    mp_config_free(&c);
    unlink(p);
}

static void secret_file(void **state)
{
    struct mp_config c;
    char cfgtext[256];
    char *secret = NULL;
    char *sp;
    char spath[64];

    (void)state;
    sp = write_file("  abcdef0123456789abcdef0123456789  \n", 0600);
    snprintf(spath, sizeof(spath), "%s", sp);
    snprintf(cfgtext, sizeof(cfgtext), GOOD "host_client_secret_file = %s\n", spath);
    assert_int_equal(parse(&c, cfgtext), 0);
    assert_int_equal(mp_config_host_secret(&c, &secret, &logger), 0);
    assert_string_equal(secret, "abcdef0123456789abcdef0123456789");
    free(secret);
    chmod(spath, 0640);
    assert_int_not_equal(mp_config_host_secret(&c, &secret, &logger), 0);
    assert_null(secret);
    mp_config_free(&c);
    unlink(spath);
}

static void key_table_is_documented(void **state)
{
    size_t n = 0;
    const struct mp_config_key_info *k = mp_config_keys(&n);

    (void)state;
    assert_true(n >= 30);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(k[i].key);
        assert_non_null(k[i].description);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_and_minimal),
        cmocka_unit_test(full_example),
        cmocka_unit_test(every_error_is_reported_with_its_line),
        cmocka_unit_test(several_errors_all_reported),
        cmocka_unit_test(insecure_http_only_loopback),
        cmocka_unit_test(secret_value_never_logged),
        cmocka_unit_test(file_permissions),
        cmocka_unit_test(oversized_and_nul_files_refused),
        cmocka_unit_test(secret_file),
        cmocka_unit_test(key_table_is_documented),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
