#ifndef PAM_MEDPLUM_ACCT_H
#define PAM_MEDPLUM_ACCT_H

#include <security/pam_modules.h>

#include "pam_args.h"

/* pam_sm_acct_mgmt's logic: PAM_IGNORE for users this module does not
 * manage, PAM_SUCCESS / PAM_PERM_DENIED for the others (see pam_acct.c). */
int pam_medplum_acct_mgmt(pam_handle_t *pamh, int flags, const struct pam_medplum_args *args);

#endif
