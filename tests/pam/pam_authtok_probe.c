/*
 * Test-only PAM module for the password suite, standing in for the modules
 * around pam_medplum in a password stack, without touching /etc/shadow.
 *
 *   pam_authtok_probe.so set=VALUE      PRELIM: nothing; UPDATE: sets
 *                                       PAM_AUTHTOK = VALUE (pam_pwquality)
 *   pam_authtok_probe.so record=FILE    UPDATE: writes PAM_AUTHTOK to FILE, or
 *                                       "<unset>" and fails with
 *                                       PAM_AUTHTOK_ERR (pam_unix use_authtok)
 */
#include <stdio.h>
#include <string.h>

#include <security/pam_modules.h>

#define EXPORT __attribute__((visibility("default")))

static int record(pam_handle_t *pamh, const char *path)
{
    const void *item = NULL;
    FILE *f = fopen(path, "we");

    if (f == NULL)
        return PAM_SYSTEM_ERR;
    pam_get_item(pamh, PAM_AUTHTOK, &item);
    fputs(item ? (const char *)item : "<unset>", f);
    fclose(f);
    return item ? PAM_SUCCESS : PAM_AUTHTOK_ERR;
}

EXPORT int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    if (flags & PAM_PRELIM_CHECK)
        return PAM_SUCCESS;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "set=", 4) == 0)
            return pam_set_item(pamh, PAM_AUTHTOK, argv[i] + 4);
        if (strncmp(argv[i], "record=", 7) == 0)
            return record(pamh, argv[i] + 7);
    }
    return PAM_SERVICE_ERR;
}
