/*
 * What the entry points share: a logger writing through pam_syslog, the
 * mp_conv implementation on the PAM conversation, and the per-transaction
 * record of whom this module authenticated.
 */
#ifndef PAM_MEDPLUM_GLUE_H
#define PAM_MEDPLUM_GLUE_H

#include <stdbool.h>

#include <security/pam_modules.h>

#include "mp_config.h"
#include "mp_log.h"
#include "mp_login.h"

struct pam_glue {
    pam_handle_t *pamh;
    int flags;
};

mp_logger pam_glue_logger(pam_handle_t *pamh, bool debug);
struct mp_conv pam_glue_conv(struct pam_glue *glue);

/* Tells the user something unless PAM_SILENT was given (errors always). */
void pam_glue_tell(pam_handle_t *pamh, int flags, bool error, const char *message);

/* Records that this module authenticated `user` in this PAM transaction. */
int pam_glue_mark_authenticated(pam_handle_t *pamh, const char *user);
bool pam_glue_authenticated(pam_handle_t *pamh, const char *user);

/* Obtains the password per use_first_pass/try_first_pass, prompting if
 * needed and storing PAM_AUTHTOK for later modules.  *password points to
 * PAM-owned memory: do not free it. */
int pam_glue_get_password(pam_handle_t *pamh, bool use_first_pass, bool try_first_pass,
                          const char **password);

/*
 * mp_config_init + mp_config_load of path.  On failure (PAM_AUTHINFO_UNAVAIL
 * or PAM_BUF_ERR) the problem is logged and the user told that the module
 * is misconfigured.  cfg must be released with mp_config_free in any case.
 */
int pam_glue_load_config(pam_handle_t *pamh, int flags, const char *path, struct mp_config *cfg,
                         const mp_logger *log);

#endif
