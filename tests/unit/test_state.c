/*
 * mp_state: the private per-user and host state files in a temporary cache
 * directory (no root needed: files owned by the euid are accepted).
 */
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

#include "mp_secret.h"
#include "mp_state.h"

#define VERIFIER "$y$j9T$YDetUGlLIRDfWNGpZjNWF0$aPx58lUx0oKUVtV/MbzMfkNArC0XL2VjmhF9bOeN956"
#define PROFILE "Practitioner/7618b02a-aace-465e-96d6-68f936dcf006"

static void quiet(void *ctx, int priority, const char *message)
{
    (void)ctx;
    (void)priority;
    (void)message;
}

static const mp_logger log_quiet = {quiet, NULL, false};

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mp-state-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    chmod(f->dir, 0755);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[160];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static const char *file_of(struct fixture *f, const char *name)
{
    snprintf(f->path, sizeof(f->path), "%s/private/%s", f->dir, name);
    return f->path;
}

static void no_state_is_zero(void **state)
{
    struct fixture *f = *state;
    struct mp_user_state st;
    struct mp_backoff_state b;
    char *v = (char *)1;

    memset(&st, 0xff, sizeof(st));
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), 0);
    assert_int_equal(st.membership, MP_MEMBERSHIP_UNKNOWN);
    assert_int_equal(st.last_online_login, 0);
    assert_false(st.has_verifier);
    assert_int_equal(mp_state_get_verifier(f->dir, "alice", &v, &log_quiet), 0);
    assert_null(v);
    assert_int_equal(mp_state_get_backoff(f->dir, &b, &log_quiet), 0);
    assert_int_equal(b.failures, 0);
    /* Reading and forgetting create nothing. */
    assert_int_equal(mp_state_forget_verifier(f->dir, "alice", &log_quiet), 0);
    assert_int_equal(access(file_of(f, ""), F_OK), -1);
}

static void record_login_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct mp_user_state st;
    struct stat sb;
    char *v = NULL;

    assert_int_equal(
        mp_state_record_login(f->dir, "alice", PROFILE, VERIFIER, true, 1000, &log_quiet), 0);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), 0);
    assert_int_equal(st.membership, MP_MEMBERSHIP_ACTIVE);
    assert_int_equal(st.membership_checked_at, 1000);
    assert_int_equal(st.last_online_login, 1000);
    assert_true(st.mfa_user);
    assert_true(st.has_verifier);
    assert_string_equal(st.profile, PROFILE);
    assert_int_equal(mp_state_get_verifier(f->dir, "alice", &v, &log_quiet), 0);
    assert_string_equal(v, VERIFIER);
    mp_secret_free(v);
    /* 0600 file in a 0700 directory */
    assert_int_equal(stat(file_of(f, "user-alice"), &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(stat(file_of(f, ""), &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
}

static void membership_revocation_drops_verifier(void **state)
{
    struct fixture *f = *state;
    struct mp_user_state st;

    assert_int_equal(
        mp_state_record_login(f->dir, "alice", PROFILE, VERIFIER, false, 1000, &log_quiet), 0);
    assert_int_equal(
        mp_state_set_membership(f->dir, "alice", MP_MEMBERSHIP_ACTIVE, 2000, &log_quiet), 0);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), 0);
    assert_true(st.has_verifier);
    assert_int_equal(st.membership_checked_at, 2000);
    assert_int_equal(
        mp_state_set_membership(f->dir, "alice", MP_MEMBERSHIP_ABSENT, 3000, &log_quiet), 0);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), 0);
    assert_int_equal(st.membership, MP_MEMBERSHIP_ABSENT);
    assert_false(st.has_verifier);
    assert_int_equal(st.last_online_login, 1000);
    /* A sync may record users who never logged in. */
    assert_int_equal(
        mp_state_set_membership(f->dir, "bob", MP_MEMBERSHIP_INACTIVE, 3000, &log_quiet), 0);
    assert_int_equal(mp_state_get_user(f->dir, "bob", &st, &log_quiet), 0);
    assert_int_equal(st.membership, MP_MEMBERSHIP_INACTIVE);
    assert_int_equal(st.last_online_login, 0);
}

static void offline_counter(void **state)
{
    struct fixture *f = *state;
    struct mp_user_state st;

    assert_int_equal(mp_state_offline_begin(f->dir, "alice", 3, &log_quiet), 1); /* no state */
    assert_int_equal(
        mp_state_record_login(f->dir, "alice", PROFILE, VERIFIER, false, 1000, &log_quiet), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mp_state_offline_begin(f->dir, "alice", 3, &log_quiet), 0);
    assert_int_equal(mp_state_offline_begin(f->dir, "alice", 3, &log_quiet), 1);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), 0);
    assert_int_equal(st.offline_failures, 3);
    /* An offline success does not reset a counter that reached the limit:
     * it cannot happen; but one below the limit is reset. */
    assert_int_equal(
        mp_state_record_login(f->dir, "alice", PROFILE, VERIFIER, false, 2000, &log_quiet), 0);
    assert_int_equal(mp_state_offline_begin(f->dir, "alice", 3, &log_quiet), 0);
    assert_int_equal(mp_state_offline_succeeded(f->dir, "alice", &log_quiet), 0);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), 0);
    assert_int_equal(st.offline_failures, 0);
}

static void forget_and_set_verifier(void **state)
{
    struct fixture *f = *state;
    struct mp_user_state st;
    char *v = NULL;

    /* No online login recorded: a verifier alone is not stored. */
    assert_int_equal(mp_state_set_verifier(f->dir, "carol", VERIFIER, &log_quiet), 0);
    assert_int_equal(mp_state_get_user(f->dir, "carol", &st, &log_quiet), 0);
    assert_false(st.has_verifier);
    assert_int_equal(mp_state_record_login(f->dir, "alice", PROFILE, NULL, false, 1000, &log_quiet),
                     0);
    assert_int_equal(mp_state_set_verifier(f->dir, "alice", VERIFIER, &log_quiet), 0);
    assert_int_equal(mp_state_get_verifier(f->dir, "alice", &v, &log_quiet), 0);
    assert_string_equal(v, VERIFIER);
    mp_secret_free(v);
    assert_int_equal(mp_state_forget_verifier(f->dir, "alice", &log_quiet), 0);
    assert_int_equal(mp_state_get_verifier(f->dir, "alice", &v, &log_quiet), 0);
    assert_null(v);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), 0);
    assert_int_equal(st.last_online_login, 1000);
    /* Invalid verifiers and names are refused. */
    assert_int_equal(mp_state_set_verifier(f->dir, "alice", "$y$\nmembership active", &log_quiet),
                     -1);
    assert_int_equal(mp_state_get_user(f->dir, "../etc", &st, &log_quiet), -1);
    assert_int_equal(mp_state_record_login(f->dir, "a/b", PROFILE, NULL, false, 1, &log_quiet), -1);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static void corrupt_and_insecure_files_refused(void **state)
{
    struct fixture *f = *state;
    struct mp_user_state st;

    assert_int_equal(
        mp_state_record_login(f->dir, "alice", PROFILE, VERIFIER, false, 1000, &log_quiet), 0);
    write_file(file_of(f, "user-alice"),
               "pam_medplum-state 1\nmembership active\n"
               "membership_checked_at 12x\n",
               0600);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), -1);
    write_file(file_of(f, "user-alice"),
               "pam_medplum-state 1\nmembership active\n"
               "membership active\n",
               0600);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), -1);
    write_file(file_of(f, "user-alice"), "garbage\n", 0600);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), -1);
    /* group-readable: it would leak the verifier */
    write_file(file_of(f, "user-alice"), "pam_medplum-state 1\nmembership active\n", 0640);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), -1);
    /* unknown keys from a newer writer are fine */
    write_file(file_of(f, "user-alice"),
               "pam_medplum-state 1\nmembership inactive\n"
               "future_key 1\n",
               0600);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), 0);
    assert_int_equal(st.membership, MP_MEMBERSHIP_INACTIVE);
    /* a symlink is never followed */
    unlink(file_of(f, "user-alice"));
    assert_int_equal(symlink("/etc/passwd", file_of(f, "user-alice")), 0);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), -1);
    /* a loose private directory is refused */
    unlink(file_of(f, "user-alice"));
    chmod(file_of(f, ""), 0755);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), -1);
    assert_int_equal(
        mp_state_record_login(f->dir, "alice", PROFILE, VERIFIER, false, 1000, &log_quiet), -1);
}

static void purge(void **state)
{
    struct fixture *f = *state;
    struct mp_backoff_state b = {2, 10, 20, 200, "Medplum unreachable: timeout"};
    struct mp_user_state st;

    assert_int_equal(
        mp_state_record_login(f->dir, "alice", PROFILE, VERIFIER, false, 1000, &log_quiet), 0);
    assert_int_equal(
        mp_state_record_login(f->dir, "carol", PROFILE, VERIFIER, false, 1000, &log_quiet), 0);
    assert_int_equal(mp_state_set_backoff(f->dir, &b, &log_quiet), 0);
    assert_int_equal(mp_state_purge_user(f->dir, "alice", &log_quiet), 0);
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), 0);
    assert_int_equal(st.last_online_login, 0);
    assert_int_equal(mp_state_get_user(f->dir, "carol", &st, &log_quiet), 0);
    assert_int_equal(st.last_online_login, 1000);
    assert_int_equal(mp_state_purge_all(f->dir, &log_quiet), 0);
    assert_int_equal(mp_state_get_user(f->dir, "carol", &st, &log_quiet), 0);
    assert_int_equal(st.last_online_login, 0);
    assert_int_equal(mp_state_get_backoff(f->dir, &b, &log_quiet), 0);
    assert_int_equal(b.failures, 0);
}

static void backoff_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct mp_backoff_state b = {3, 100, 160, 400, "Medplum unreachable: timeout (x)"}, r;

    assert_int_equal(mp_state_set_backoff(f->dir, &b, &log_quiet), 0);
    assert_int_equal(mp_state_get_backoff(f->dir, &r, &log_quiet), 0);
    assert_int_equal(r.failures, 3);
    assert_int_equal(r.first_failure, 100);
    assert_int_equal(r.last_failure, 160);
    assert_int_equal(r.until, 400);
    assert_string_equal(r.reason, "Medplum unreachable: timeout (x)");
    assert_int_equal(mp_state_clear_backoff(f->dir, &log_quiet), 0);
    assert_int_equal(access(file_of(f, "backoff"), F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(no_state_is_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(record_login_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(membership_revocation_drops_verifier, setup, teardown),
        cmocka_unit_test_setup_teardown(offline_counter, setup, teardown),
        cmocka_unit_test_setup_teardown(forget_and_set_verifier, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_and_insecure_files_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(purge, setup, teardown),
        cmocka_unit_test_setup_teardown(backoff_roundtrip, setup, teardown),
    };

    return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
