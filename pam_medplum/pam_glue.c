#include "pam_glue.h"

#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <security/pam_ext.h>

#include "mp_secret.h"

#define DATA_AUTHENTICATED "pam_medplum_authenticated"

static void emit_pam_syslog(void *ctx, int priority, const char *message)
{
    pam_syslog((pam_handle_t *)ctx, priority, "%s", message);
}

mp_logger pam_glue_logger(pam_handle_t *pamh, bool debug)
{
    mp_logger log = {emit_pam_syslog, pamh, debug};
    return log;
}

void pam_glue_tell(pam_handle_t *pamh, int flags, bool error, const char *message)
{
    if (message == NULL || message[0] == '\0')
        return;
    if (error)
        pam_error(pamh, "%s", message);
    else if (!(flags & PAM_SILENT))
        pam_info(pamh, "%s", message);
}

static int ask_secret(void *ctx, const char *prompt, char **answer)
{
    struct pam_glue *glue = ctx;
    char *resp = NULL;

    *answer = NULL;
    if (pam_prompt(glue->pamh, PAM_PROMPT_ECHO_OFF, &resp, "%s", prompt) != PAM_SUCCESS ||
        resp == NULL) {
        mp_secret_free(resp);
        return -1;
    }
    *answer = resp;
    return 0;
}

static void tell(void *ctx, bool error, const char *message)
{
    struct pam_glue *glue = ctx;

    pam_glue_tell(glue->pamh, glue->flags, error, message);
}

struct mp_conv pam_glue_conv(struct pam_glue *glue)
{
    struct mp_conv conv = {ask_secret, tell, glue};
    return conv;
}

static void free_data(pam_handle_t *pamh, void *data, int error_status)
{
    (void)pamh;
    (void)error_status;
    free(data);
}

int pam_glue_mark_authenticated(pam_handle_t *pamh, const char *user)
{
    char *copy = strdup(user);

    if (copy == NULL)
        return PAM_BUF_ERR;
    return pam_set_data(pamh, DATA_AUTHENTICATED, copy, free_data);
}

bool pam_glue_authenticated(pam_handle_t *pamh, const char *user)
{
    const void *data = NULL;

    if (pam_get_data(pamh, DATA_AUTHENTICATED, &data) != PAM_SUCCESS || data == NULL)
        return false;
    return strcmp((const char *)data, user) == 0;
}

int pam_glue_get_password(pam_handle_t *pamh, bool use_first_pass, bool try_first_pass,
                          const char **password)
{
    const void *item = NULL;
    char *typed = NULL;
    int rc;

    *password = NULL;
    if (use_first_pass || try_first_pass) {
        rc = pam_get_item(pamh, PAM_AUTHTOK, &item);
        if (rc == PAM_SUCCESS && item != NULL) {
            *password = item;
            return PAM_SUCCESS;
        }
        if (use_first_pass)
            return PAM_AUTH_ERR;
    }
    rc = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &typed, "Password: ");
    if (rc != PAM_SUCCESS || typed == NULL) {
        mp_secret_free(typed);
        return rc == PAM_SUCCESS ? PAM_CONV_ERR : rc;
    }
    /* Later modules (use_first_pass, pam_gnome_keyring) get it from here. */
    rc = pam_set_item(pamh, PAM_AUTHTOK, typed);
    mp_secret_free(typed);
    if (rc != PAM_SUCCESS)
        return rc;
    rc = pam_get_item(pamh, PAM_AUTHTOK, &item);
    if (rc != PAM_SUCCESS || item == NULL)
        return PAM_AUTH_ERR;
    *password = item;
    return PAM_SUCCESS;
}

int pam_glue_load_config(pam_handle_t *pamh, int flags, const char *path, struct mp_config *cfg,
                         const mp_logger *log)
{
    if (mp_config_init(cfg) != 0)
        return PAM_BUF_ERR;
    if (mp_config_load(cfg, path, log) != 0) {
        pam_syslog(pamh, LOG_ERR, "configuration %s is unusable; denying Medplum logins", path);
        pam_glue_tell(pamh, flags, true,
                      "Medplum login is not configured correctly; contact your administrator.");
        return PAM_AUTHINFO_UNAVAIL;
    }
    return PAM_SUCCESS;
}
