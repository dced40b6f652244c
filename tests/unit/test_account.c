/* Which names are local: /etc/passwd read directly, completely, or not trusted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_account.h"

static char *passwd_with_long_line(void)
{
    static char path[] = "/tmp/mp-passwd-XXXXXX";
    char *gecos = malloc(5001);
    FILE *fp;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_non_null(gecos);
    memset(gecos, 'g', 5000);
    gecos[5000] = '\0';
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    fprintf(fp, "root:x:0:0:root:/root:/bin/bash\n");
    fprintf(fp, "wide:x:1001:1001:%s:/home/wide:/bin/sh\n", gecos);
    fprintf(fp, "labadmin:x:1002:1002:Lab Admin:/home/labadmin:/bin/bash\n");
    fclose(fp);
    free(gecos);
    return path;
}

/* Found in review: a line over the buffer used to end the scan, so every
 * local account after it looked like a Medplum user. */
static void long_lines_do_not_hide_local_accounts(void **state)
{
    char *path = passwd_with_long_line();

    (void)state;
    assert_int_equal(mp_passwd_file_lookup(path, "labadmin"), 1);
    assert_int_equal(mp_passwd_file_lookup(path, "wide"), 1);
    assert_int_equal(mp_passwd_file_lookup(path, "alice"), 0);
    unlink(path);
}

static void unreadable_file_is_not_trusted(void **state)
{
    (void)state;
    assert_int_equal(mp_passwd_file_lookup("/nonexistent/passwd", "alice"), -1);
    assert_true(mp_passwd_file_has("/nonexistent/passwd", "alice"));
}

static void foreign_names(void **state)
{
    char why[128];

    (void)state;
    assert_true(mp_account_is_foreign("root", why, sizeof(why)));
    assert_non_null(strstr(why, "local account"));
    assert_true(mp_account_is_foreign("Bad:Name", why, sizeof(why)));
    assert_non_null(strstr(why, "not a valid user name"));
    assert_false(mp_account_is_foreign("zz-not-local-9", why, sizeof(why)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(long_lines_do_not_hide_local_accounts),
        cmocka_unit_test(unreadable_file_is_not_trusted),
        cmocka_unit_test(foreign_names),
    };
    return cmocka_run_group_tests_name("local accounts", tests, NULL, NULL);
}
