/*
 * PAM entry points.  They stay thin: parse the arguments and hand over to
 * one function per phase.  Only these symbols are exported (pam_medplum.map).
 */
#include <security/pam_modules.h>

#include "pam_acct.h"
#include "pam_args.h"
#include "pam_auth.h"
#include "pam_chpass.h"
#include "pam_glue.h"

#define PAM_MEDPLUM_EXPORT __attribute__((visibility("default")))

PAM_MEDPLUM_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc,
                                           const char **argv)
{
    struct pam_medplum_args args;

    pam_medplum_parse_args(pamh, argc, argv, &args);
    return pam_medplum_authenticate(pamh, flags, &args);
}

PAM_MEDPLUM_EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    const char *user = NULL;

    (void)flags;
    (void)argc;
    (void)argv;
    if (pam_get_item(pamh, PAM_USER, (const void **)&user) != PAM_SUCCESS || user == NULL)
        return PAM_IGNORE;
    return pam_glue_authenticated(pamh, user) ? PAM_SUCCESS : PAM_IGNORE;
}

PAM_MEDPLUM_EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    struct pam_medplum_args args;

    pam_medplum_parse_args(pamh, argc, argv, &args);
    return pam_medplum_acct_mgmt(pamh, flags, &args);
}

PAM_MEDPLUM_EXPORT int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    struct pam_medplum_args args;

    pam_medplum_parse_args(pamh, argc, argv, &args);
    return pam_medplum_chauthtok(pamh, flags, &args);
}

PAM_MEDPLUM_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc,
                                           const char **argv)
{
    (void)pamh;
    (void)flags;
    (void)argc;
    (void)argv;
    return PAM_IGNORE;
}

PAM_MEDPLUM_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
                                            const char **argv)
{
    (void)pamh;
    (void)flags;
    (void)argc;
    (void)argv;
    return PAM_IGNORE;
}
