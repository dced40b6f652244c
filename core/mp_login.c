#include "mp_login.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_crypto.h"
#include "mp_json.h"
#include "mp_outcome.h"
#include "mp_secret.h"
#include "mp_validate.h"

enum step {
    STEP_LOGIN,
    STEP_MFA,
    STEP_PROFILE,
    STEP_TOKEN,
    STEP_DONE,
};

struct flow {
    const struct mp_config *cfg;
    const struct mp_transport *transport;
    const struct mp_conv *conv;
    const mp_logger *log;
    const struct mp_login_params *params;
    struct mp_login_result *result;

    struct mp_pkce pkce;
    char login_id[64];
    char membership_id[64];
    char *code; /* secret: the one-time authorization code */
    bool client_sent;
    enum step next;
};

/* Ends the flow with a decision; the first decision wins. */
static void decide(struct flow *f, mp_status st, const char *reason)
{
    struct mp_login_result *r = f->result;

    f->next = STEP_DONE;
    r->status = st;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

static void decide_from_response(struct flow *f, const struct mp_http_response *resp)
{
    char reason[256];
    enum mp_denial denial;
    mp_status st = mp_outcome_classify_detail(resp, reason, sizeof(reason), &denial);

    if (st == MP_OK) {
        st = MP_ERROR;
        snprintf(reason, sizeof(reason), "unexpected answer from Medplum");
    }
    f->result->membership_inactive = denial == MP_DENIAL_MEMBERSHIP_INACTIVE;
    if (resp->net == MP_NET_OK && resp->status == 429)
        f->result->retry_after = mp_retry_after(resp->body, resp->body_len, resp->ratelimit);
    decide(f, st, reason);
}

/* POSTs a JSON tree (wiped afterwards: it may hold the password). */
static int post_json(struct flow *f, const char *path, cJSON *body, const char *bearer,
                     struct mp_http_response *resp)
{
    char *text = mp_json_print_secret(body);
    struct mp_http_request req = {0};
    int rc;

    mp_json_delete_wiping(body);
    if (text == NULL) {
        memset(resp, 0, sizeof(*resp));
        resp->net = MP_NET_INTERNAL;
        snprintf(resp->error, sizeof(resp->error), "out of memory");
        return -1;
    }
    req.method = "POST";
    req.path = path;
    req.content_type = "application/json";
    req.body = text;
    req.body_len = strlen(text);
    req.bearer = bearer;
    rc = f->transport->perform(f->transport->ctx, &req, resp);
    mp_secret_free(text);
    return rc;
}

static bool copy_id(char *dst, size_t len, const char *src)
{
    if (src == NULL || !mp_is_uuid(src) || strlen(src) >= len)
        return false;
    strcpy(dst, src);
    return true;
}

/* The profile type of "Practitioner/<id>", checked against the allowed list. */
static bool profile_allowed(const struct mp_config *cfg, const char *reference)
{
    char type[65];
    const char *slash;

    if (reference == NULL || (slash = strchr(reference, '/')) == NULL)
        return false;
    if ((size_t)(slash - reference) >= sizeof(type) || !mp_is_uuid(slash + 1))
        return false;
    memcpy(type, reference, (size_t)(slash - reference));
    type[slash - reference] = '\0';
    return mp_config_profile_type_allowed(cfg, type);
}

static bool is_our_project(const struct mp_config *cfg, const char *reference)
{
    return reference != NULL && strncmp(reference, "Project/", 8) == 0 &&
           strcmp(reference + 8, cfg->project_id) == 0;
}

/* Picks the one membership of our project with an allowed (and, if the name
 * is bound, the expected) profile.  None or several: deny. */
static void choose_membership(struct flow *f, const cJSON *list)
{
    const cJSON *m;
    int matches = 0;

    cJSON_ArrayForEach(m, list)
    {
        const char *project = mp_json_reference(m, "project");
        const char *profile = mp_json_reference(m, "profile");
        const char *id = mp_json_string(m, "id");

        if (!cJSON_IsObject(m) || !is_our_project(f->cfg, project) ||
            !profile_allowed(f->cfg, profile))
            continue;
        if (f->params->expected_profile && strcmp(profile, f->params->expected_profile) != 0)
            continue;
        if (!copy_id(f->membership_id, sizeof(f->membership_id), id)) {
            decide(f, MP_ERROR, "membership list entry without a valid id");
            return;
        }
        matches++;
    }
    if (matches == 0)
        decide(f, MP_DENIED, "no membership of an allowed type in the configured project");
    else if (matches > 1)
        decide(f, MP_DENIED, "several matching memberships in the project (ambiguous)");
    else
        f->next = STEP_PROFILE;
}

/* Interprets a 200 answer of auth/login, auth/mfa/verify or auth/profile. */
static void interpret_auth_answer(struct flow *f, const cJSON *root, enum step from)
{
    const char *login = mp_json_string(root, "login");
    const char *code = mp_json_string(root, "code");
    const cJSON *memberships = mp_json_array(root, "memberships");

    if (!copy_id(f->login_id, sizeof(f->login_id), login)) {
        decide(f, MP_ERROR, "answer without a valid login id");
        return;
    }
    if (code != NULL) {
        if (strlen(code) < 16 || strlen(code) > 256) {
            decide(f, MP_ERROR, "malformed authorization code");
            return;
        }
        f->code = strdup(code);
        f->next = f->code ? STEP_TOKEN : STEP_DONE;
        if (f->code == NULL)
            decide(f, MP_ERROR, "out of memory");
        return;
    }
    if (mp_json_true(root, "mfaEnrollRequired")) {
        snprintf(f->result->user_message, sizeof(f->result->user_message),
                 "Your Medplum account requires two-factor authentication. Enroll an "
                 "authenticator app in Medplum first, then log in again.");
        decide(f, MP_DENIED, "MFA enrollment required");
        return;
    }
    if (mp_json_true(root, "mfaRequired")) {
        if (from != STEP_LOGIN)
            decide(f, MP_ERROR, "MFA requested twice");
        else
            f->next = STEP_MFA;
        return;
    }
    if (memberships != NULL && from != STEP_PROFILE) {
        choose_membership(f, memberships);
        return;
    }
    decide(f, MP_ERROR, "unexpected answer from Medplum");
}

/* Runs one auth/... POST and feeds a 200 answer to interpret_auth_answer. */
static void auth_exchange(struct flow *f, const char *path, cJSON *body, enum step from)
{
    struct mp_http_response resp;
    cJSON *root;

    post_json(f, path, body, NULL, &resp);
    if (mp_http_status(&resp) != MP_OK) {
        decide_from_response(f, &resp);
        goto out;
    }
    root = mp_json_parse_object(resp.body, resp.body_len);
    if (root == NULL) {
        decide(f, MP_ERROR, "Medplum answered 200 with a body that is not a JSON object");
        goto out;
    }
    interpret_auth_answer(f, root, from);
    mp_json_delete_wiping(root);
out:
    mp_http_response_free(&resp);
}

static void step_login(struct flow *f)
{
    cJSON *body = cJSON_CreateObject();
    const struct mp_config *cfg = f->cfg;

    if (mp_pkce_generate(&f->pkce) != 0) {
        cJSON_Delete(body);
        decide(f, MP_ERROR, "no randomness for PKCE");
        return;
    }
    if (body == NULL || !cJSON_AddStringToObject(body, "email", f->params->email) ||
        !cJSON_AddStringToObject(body, "password", f->params->password) ||
        !cJSON_AddStringToObject(body, "projectId", cfg->project_id) ||
        (cfg->client_id && !cJSON_AddStringToObject(body, "clientId", cfg->client_id)) ||
        /* resourceType filters by one type only; with several, filter ourselves. */
        (cfg->allowed_profile_types[1] == NULL &&
         !cJSON_AddStringToObject(body, "resourceType", cfg->allowed_profile_types[0])) ||
        !cJSON_AddStringToObject(body, "scope", "openid") ||
        !cJSON_AddStringToObject(body, "codeChallenge", f->pkce.challenge) ||
        !cJSON_AddStringToObject(body, "codeChallengeMethod", "S256")) {
        mp_json_delete_wiping(body);
        decide(f, MP_ERROR, "out of memory");
        return;
    }
    f->client_sent = cfg->client_id != NULL;
    auth_exchange(f, "auth/login", body, STEP_LOGIN);
}

static void step_mfa(struct flow *f)
{
    char *answer = NULL;
    char digits[16];
    cJSON *body;

    f->result->mfa_used = true;
    if (f->conv == NULL ||
        f->conv->ask_secret(f->conv->ctx, "Authenticator code: ", &answer) != 0 || answer == NULL) {
        decide(f, MP_DENIED, "no MFA code entered");
        goto out;
    }
    if (!mp_normalize_otp(answer, digits, sizeof(digits))) {
        decide(f, MP_DENIED, "MFA code is not 6-8 digits (not sent)");
        goto out;
    }
    body = cJSON_CreateObject();
    if (body == NULL || !cJSON_AddStringToObject(body, "login", f->login_id) ||
        !cJSON_AddStringToObject(body, "token", digits)) {
        mp_json_delete_wiping(body);
        decide(f, MP_ERROR, "out of memory");
        goto out;
    }
    auth_exchange(f, "auth/mfa/verify", body, STEP_MFA);
out:
    explicit_bzero(digits, sizeof(digits));
    mp_secret_free(answer);
}

static void step_profile(struct flow *f)
{
    cJSON *body = cJSON_CreateObject();

    if (body == NULL || !cJSON_AddStringToObject(body, "login", f->login_id) ||
        !cJSON_AddStringToObject(body, "profile", f->membership_id)) {
        mp_json_delete_wiping(body);
        decide(f, MP_ERROR, "out of memory");
        return;
    }
    auth_exchange(f, "auth/profile", body, STEP_PROFILE);
}

/* Builds the token form; every piece is a secret or next to one. */
static char *token_form(struct flow *f)
{
    char *code = mp_form_escape(f->code);
    char *client = f->client_sent ? mp_form_escape(f->cfg->client_id) : NULL;
    char *form = NULL;

    if (code == NULL || (f->client_sent && client == NULL))
        goto out;
    form = mp_secret_printf("grant_type=authorization_code&code=%s&code_verifier=%s%s%s", code,
                            f->pkce.verifier, client ? "&client_id=" : "", client ? client : "");
out:
    mp_secret_free(code);
    free(client);
    return form;
}

static void check_tokens(struct flow *f, const cJSON *root)
{
    const char *access = mp_json_string(root, "access_token");
    const char *project = mp_json_reference(root, "project");
    const char *profile = mp_json_reference(root, "profile");
    const cJSON *profile_obj = mp_json_object(root, "profile");
    const char *display = profile_obj ? mp_json_string(profile_obj, "display") : NULL;
    struct mp_login_result *r = f->result;

    if (access == NULL || access[0] == '\0') {
        decide(f, MP_ERROR, "token response without access_token");
        return;
    }
    if (!is_our_project(f->cfg, project)) {
        decide(f, MP_DENIED, "wrong project in token");
        return;
    }
    if (!profile_allowed(f->cfg, profile)) {
        decide(f, MP_DENIED, "profile type not allowed");
        return;
    }
    if (f->params->expected_profile && strcmp(profile, f->params->expected_profile) != 0) {
        decide(f, MP_DENIED, "token profile is not the Practitioner this user name is bound to");
        return;
    }
    r->access_token = strdup(access);
    if (r->access_token == NULL) {
        decide(f, MP_ERROR, "out of memory");
        return;
    }
    snprintf(r->profile, sizeof(r->profile), "%s", profile);
    mp_sanitize_for_log(display ? display : "", r->profile_display, sizeof(r->profile_display));
    snprintf(r->membership_id, sizeof(r->membership_id), "%s", f->membership_id);
    decide(f, MP_OK, "ok");
}

static void step_token(struct flow *f)
{
    char *form = token_form(f);
    struct mp_http_request req = {0};
    struct mp_http_response resp;
    cJSON *root = NULL;

    mp_secret_clear(&f->code);
    if (form == NULL) {
        decide(f, MP_ERROR, "out of memory");
        return;
    }
    req.method = "POST";
    req.path = "oauth2/token";
    req.content_type = "application/x-www-form-urlencoded";
    req.body = form;
    req.body_len = strlen(form);
    f->transport->perform(f->transport->ctx, &req, &resp);
    mp_secret_free(form);
    if (mp_http_status(&resp) != MP_OK) {
        decide_from_response(f, &resp);
        /* After a code was issued, a 4xx here is our protocol, not the user. */
        if (f->result->status == MP_DENIED)
            f->result->status = MP_ERROR;
        goto out;
    }
    root = mp_json_parse_object(resp.body, resp.body_len);
    if (root == NULL) {
        decide(f, MP_ERROR, "token response is not a JSON object");
        goto out;
    }
    check_tokens(f, root);
out:
    mp_json_delete_wiping(root);
    mp_http_response_free(&resp);
}

void mp_login_logout(const struct mp_transport *transport, const mp_logger *log,
                     const char *access_token)
{
    struct mp_http_request req = {0};
    struct mp_http_response resp;
    char reason[256];

    req.method = "POST";
    req.path = "oauth2/logout";
    req.content_type = "application/json";
    req.body = "{}";
    req.body_len = 2;
    req.bearer = access_token;
    transport->perform(transport->ctx, &req, &resp);
    if (mp_outcome_classify(&resp, reason, sizeof(reason)) != MP_OK)
        mp_log(log, LOG_WARNING,
               "logout after login failed (a Medplum session may remain "
               "until it expires): %s",
               reason);
    mp_http_response_free(&resp);
}

mp_status mp_login_run(const struct mp_config *cfg, const struct mp_transport *transport,
                       const struct mp_conv *conv, const mp_logger *log,
                       const struct mp_login_params *params, struct mp_login_result *result)
{
    struct flow f;

    memset(result, 0, sizeof(*result));
    memset(&f, 0, sizeof(f));
    f.cfg = cfg;
    f.transport = transport;
    f.conv = conv;
    f.log = log;
    f.params = params;
    f.result = result;
    f.next = STEP_LOGIN;
    result->status = MP_ERROR;
    snprintf(result->reason, sizeof(result->reason), "internal error");
    while (f.next != STEP_DONE) {
        switch (f.next) {
        case STEP_LOGIN:
            step_login(&f);
            break;
        case STEP_MFA:
            step_mfa(&f);
            break;
        case STEP_PROFILE:
            step_profile(&f);
            break;
        case STEP_TOKEN:
            step_token(&f);
            break;
        case STEP_DONE:
            break;
        }
    }
    if (result->access_token && !params->keep_session) {
        mp_login_logout(transport, log, result->access_token);
        mp_secret_clear(&result->access_token);
    }
    if (result->status != MP_OK)
        mp_secret_clear(&result->access_token);
    mp_secret_clear(&f.code);
    mp_pkce_wipe(&f.pkce);
    return result->status;
}

void mp_login_result_clear(struct mp_login_result *result)
{
    mp_secret_clear(&result->access_token);
    explicit_bzero(result, sizeof(*result));
}
