#ifndef PAM_MEDPLUM_AUTH_H
#define PAM_MEDPLUM_AUTH_H

#include <security/pam_modules.h>

#include "pam_args.h"

/* pam_sm_authenticate's logic: see pam_medplum(8) for the return codes. */
int pam_medplum_authenticate(pam_handle_t *pamh, int flags, const struct pam_medplum_args *args);

#endif
