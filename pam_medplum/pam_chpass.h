#ifndef PAM_MEDPLUM_CHPASS_H
#define PAM_MEDPLUM_CHPASS_H

#include <security/pam_modules.h>

#include "pam_args.h"

/* pam_sm_chauthtok's logic (see pam_chpass.c). */
int pam_medplum_chauthtok(pam_handle_t *pamh, int flags, const struct pam_medplum_args *args);

#endif
