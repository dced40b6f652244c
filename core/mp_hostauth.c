#include "mp_hostauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_json.h"
#include "mp_login.h"
#include "mp_outcome.h"
#include "mp_secret.h"

/* grant_type=client_credentials&client_id=..&client_secret=.. (a secret). */
static char *token_form(const struct mp_hostauth *ha)
{
    char *id = mp_form_escape(ha->client_id);
    char *secret = mp_form_escape(ha->secret);
    char *form = NULL;

    if (id != NULL && secret != NULL)
        form = mp_secret_printf("grant_type=client_credentials&client_id=%s&client_secret=%s", id,
                                secret);
    free(id);
    mp_secret_free(secret);
    return form;
}

/* The token must be for this client in the configured project: a secret
 * pasted from another project would otherwise sync a foreign directory. */
static mp_status check_token_answer(struct mp_hostauth *ha, const struct mp_config *cfg,
                                    const cJSON *root, char *reason, size_t reason_len)
{
    const char *access = mp_json_string(root, "access_token");
    const char *project = mp_json_reference(root, "project");
    const char *profile = mp_json_reference(root, "profile");
    const cJSON *profile_obj = mp_json_object(root, "profile");
    const char *display = profile_obj ? mp_json_string(profile_obj, "display") : NULL;
    char want[80];

    if (access == NULL || access[0] == '\0') {
        snprintf(reason, reason_len, "token response without access_token");
        return MP_ERROR;
    }
    if (project == NULL || strncmp(project, "Project/", 8) != 0 ||
        strcmp(project + 8, cfg->project_id) != 0) {
        snprintf(reason, reason_len, "host client %s does not belong to project %s", ha->client_id,
                 cfg->project_id);
        return MP_ERROR;
    }
    snprintf(want, sizeof(want), "ClientApplication/%s", ha->client_id);
    if (profile != NULL && strcmp(profile, want) != 0) {
        snprintf(reason, reason_len, "token was issued for %.80s, not %s", profile, want);
        return MP_ERROR;
    }
    mp_sanitize_for_log(display ? display : "", ha->client_name, sizeof(ha->client_name));
    ha->token = strdup(access);
    if (ha->token == NULL) {
        snprintf(reason, reason_len, "out of memory");
        return MP_ERROR;
    }
    return MP_OK;
}

static mp_status fetch_token(struct mp_hostauth *ha, const struct mp_config *cfg,
                             const struct mp_transport *transport, char *reason, size_t reason_len)
{
    struct mp_http_request req = {0};
    struct mp_http_response resp;
    char *form = token_form(ha);
    cJSON *root = NULL;
    mp_status st = MP_ERROR;

    if (form == NULL) {
        snprintf(reason, reason_len, "out of memory");
        return MP_ERROR;
    }
    req.method = "POST";
    req.path = "oauth2/token";
    req.content_type = "application/x-www-form-urlencoded";
    req.body = form;
    req.body_len = strlen(form);
    transport->perform(transport->ctx, &req, &resp);
    mp_secret_free(form);
    st = mp_outcome_classify(&resp, reason, reason_len);
    if (st != MP_OK) {
        /* "Invalid client"/"Invalid secret" are Medplum's "no" to us. */
        if (resp.net == MP_NET_OK && resp.status == 400)
            st = MP_DENIED;
        goto out;
    }
    root = mp_json_parse_object(resp.body, resp.body_len);
    if (root == NULL) {
        snprintf(reason, reason_len, "token response is not a JSON object");
        st = MP_ERROR;
        goto out;
    }
    st = check_token_answer(ha, cfg, root, reason, reason_len);
out:
    mp_json_delete_wiping(root);
    mp_http_response_free(&resp);
    return st;
}

mp_status mp_hostauth_begin(struct mp_hostauth *ha, const struct mp_config *cfg,
                            const struct mp_transport *transport, const mp_logger *log,
                            char *reason, size_t reason_len)
{
    memset(ha, 0, sizeof(*ha));
    ha->mode = cfg->host_auth;
    if (cfg->host_client_id == NULL) {
        snprintf(reason, reason_len, "host_client_id is not set in %s", cfg->path);
        return MP_ERROR;
    }
    snprintf(ha->client_id, sizeof(ha->client_id), "%s", cfg->host_client_id);
    if (mp_config_host_secret(cfg, &ha->secret, log) != 0) {
        snprintf(reason, reason_len, "the host client secret cannot be read (%s)",
                 cfg->host_client_secret_file ? cfg->host_client_secret_file
                                              : "set host_client_secret_file");
        return MP_ERROR;
    }
    if (ha->mode == MP_HOST_AUTH_BASIC) {
        reason[0] = '\0';
        return MP_OK;
    }
    return fetch_token(ha, cfg, transport, reason, reason_len);
}

void mp_hostauth_apply(const struct mp_hostauth *ha, struct mp_http_request *req)
{
    if (ha->token != NULL) {
        req->bearer = ha->token;
    } else if (ha->mode == MP_HOST_AUTH_BASIC && ha->secret != NULL) {
        req->basic_user = ha->client_id;
        req->basic_pass = ha->secret;
    }
}

void mp_hostauth_end(struct mp_hostauth *ha, const struct mp_transport *transport,
                     const mp_logger *log)
{
    if (ha == NULL)
        return;
    if (ha->token != NULL && transport != NULL)
        mp_login_logout(transport, log, ha->token);
    mp_secret_clear(&ha->token);
    mp_secret_clear(&ha->secret);
    explicit_bzero(ha, sizeof(*ha));
}
