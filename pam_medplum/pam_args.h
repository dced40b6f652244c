/* Module arguments: config=PATH debug use_first_pass try_first_pass use_authtok. */
#ifndef PAM_MEDPLUM_ARGS_H
#define PAM_MEDPLUM_ARGS_H

#include <stdbool.h>

#include <security/pam_modules.h>

struct pam_medplum_args {
    const char *config; /* points into argv */
    bool debug;
    bool use_first_pass;
    bool try_first_pass;
    bool use_authtok;
};

/* Unknown arguments are logged and ignored, as pam_unix does. */
void pam_medplum_parse_args(pam_handle_t *pamh, int argc, const char **argv,
                            struct pam_medplum_args *args);

#endif
