#include "mp_chpass.h"

#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "mp_json.h"
#include "mp_outcome.h"
#include "mp_secret.h"

/* The JSON body; holds both passwords, so it is wiped by the caller. */
static char *change_body(const char *old_password, const char *new_password)
{
    cJSON *body = cJSON_CreateObject();
    char *text = NULL;

    if (body != NULL && cJSON_AddStringToObject(body, "oldPassword", old_password) &&
        cJSON_AddStringToObject(body, "newPassword", new_password))
        text = mp_json_print_secret(body);
    mp_json_delete_wiping(body);
    return text;
}

/* Turns a non-2xx answer into the user's message. */
static void explain(const struct mp_http_response *resp, struct mp_chpass_result *r)
{
    char text[200] = "";

    if (resp->net == MP_NET_OK && resp->status == 500) {
        snprintf(r->user_message, sizeof(r->user_message), "%s", MP_MSG_HIBP_UNREACHABLE);
        snprintf(r->reason, sizeof(r->reason),
                 "Medplum answered HTTP 500 to the password "
                 "change (5.0.10 does when Have I Been Pwned is unreachable)");
        r->status = MP_ERROR; /* not an outage: retrying at once will not help */
        return;
    }
    if (r->status == MP_UNAVAILABLE) {
        snprintf(r->user_message, sizeof(r->user_message),
                 "Your password was not changed: "
                 "the Medplum server cannot be reached; please try again later.");
        return;
    }
    if (resp->net == MP_NET_OK && resp->status == 401) {
        r->status = MP_ERROR;
        snprintf(r->user_message, sizeof(r->user_message),
                 "Your password was not changed: "
                 "the Medplum session ended before the change; please try again.");
        return;
    }
    if (r->status == MP_DENIED && resp->net == MP_NET_OK &&
        mp_error_text(resp->body, resp->body_len, text, sizeof(text))) {
        snprintf(r->user_message, sizeof(r->user_message),
                 "Medplum did not accept the new password: %s", text);
        return;
    }
    snprintf(r->user_message, sizeof(r->user_message),
             "Your password was not changed: "
             "Medplum answered unexpectedly; contact your administrator if this persists.");
}

mp_status mp_chpass_run(const struct mp_transport *transport, const char *access_token,
                        const char *old_password, const char *new_password,
                        struct mp_chpass_result *r, const mp_logger *log)
{
    struct mp_http_request req = {0};
    struct mp_http_response resp;
    char *body = change_body(old_password, new_password);

    (void)log;
    memset(r, 0, sizeof(*r));
    r->status = MP_ERROR;
    if (body == NULL) {
        snprintf(r->reason, sizeof(r->reason), "out of memory");
        snprintf(r->user_message, sizeof(r->user_message), "Your password was not changed.");
        return r->status;
    }
    req.method = "POST";
    req.path = "auth/changepassword";
    req.content_type = "application/json";
    req.body = body;
    req.body_len = strlen(body);
    req.bearer = access_token;
    transport->perform(transport->ctx, &req, &resp);
    mp_secret_free(body);
    r->http_status = resp.net == MP_NET_OK ? resp.status : 0;
    r->status = mp_outcome_classify(&resp, r->reason, sizeof(r->reason));
    if (r->status == MP_OK)
        snprintf(r->reason, sizeof(r->reason), "password changed in Medplum");
    else
        explain(&resp, r);
    mp_http_response_free(&resp);
    return r->status;
}
