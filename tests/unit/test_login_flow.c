/*
 * The login state machine driven by responses recorded from a real Medplum
 * 5.0.10 server (shared medplum-transcripts, file named at each response;
 * redacted codes and tokens replaced by values of the same shape), through a
 * scripted transport: no libpam, no network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_crypto.h"
#include "mp_json.h"
#include "mp_login.h"

#define PROJECT "ce04dfeb-96a9-49e7-abb8-098580eeed12"
#define CLIENT "4eb5fd55-d38f-4205-89b4-13c4b49e3288"
#define LOGIN_ID "d23eb1f7-aa8b-4c5d-95b9-31f2650315c7"
#define CODE "3f9a0c1d2e4b5a697887766554433221"
#define ALICE "Practitioner/7618b02a-aace-465e-96d6-68f936dcf006"

/* ---- recorded bodies ---- */

/* 02-login-success-single-membership.json #0 */
static const char LOGIN_CODE[] = "{\"login\":\"" LOGIN_ID "\",\"code\":\"" CODE "\"}";
/* 02 #1 (tokens redacted in the recording; any JWT-shaped text will do) */
static const char TOKENS_ALICE[] =
    "{\"token_type\":\"Bearer\",\"expires_in\":3600,\"scope\":\"openid\","
    "\"id_token\":\"eyJh.eyJp.sig\",\"access_token\":\"eyJh.eyJhY2Nlc3M.sig\","
    "\"project\":{\"reference\":\"Project/" PROJECT "\",\"display\":\"Lab North\"},"
    "\"profile\":{\"reference\":\"" ALICE "\",\"display\":\"Alice Smith\"},"
    "\"smart_style_url\":\"http://localhost:8103/fhir/R4/.well-known/smart-styles.json\","
    "\"need_patient_banner\":false}";
static const char LOGOUT_OK[] =
    "{\"resourceType\":\"OperationOutcome\",\"id\":\"ok\",\"issue\":[{\"severity\":"
    "\"information\",\"code\":\"informational\",\"details\":{\"text\":\"All OK\"}}]}";
/* 03-login-multiple-memberships.json #0 */
static const char MEMBERSHIPS_CAROL[] =
    "{\"login\":\"9ddd4803-3d38-44de-a7b4-ae5174709adc\",\"memberships\":[{\"id\":"
    "\"78c582d1-b7af-4989-a094-9884dee7ddb8\",\"project\":{\"reference\":\"Project/" PROJECT
    "\",\"display\":\"Lab North\"},\"profile\":{\"reference\":\"Practitioner/"
    "e33739bb-453b-4230-a895-e1e73d3049c2\",\"display\":\"Carol White\"},\"identifier\":[{"
    "\"system\":\"https://example.org/linux-uid\",\"value\":\"20003\"}]},{\"id\":"
    "\"38da2d2e-6103-48ce-af8e-13aec133f04b\",\"project\":{\"reference\":\"Project/"
    "1fc16d77-8591-4505-a1fe-3d126c1e1f6b\",\"display\":\"Lab South\"},\"profile\":{"
    "\"reference\":\"Practitioner/0d474c43-7b1a-4748-9ce7-0e24147e4cba\",\"display\":"
    "\"Carol White\"}}]}";
static const char PROFILE_CODE_CAROL[] =
    "{\"login\":\"9ddd4803-3d38-44de-a7b4-ae5174709adc\",\"code\":\"" CODE "\"}";
static const char TOKENS_CAROL[] =
    "{\"token_type\":\"Bearer\",\"expires_in\":3600,\"scope\":\"openid\",\"access_token\":"
    "\"a.b.c\",\"project\":{\"reference\":\"Project/" PROJECT "\"},\"profile\":{\"reference\":"
    "\"Practitioner/e33739bb-453b-4230-a895-e1e73d3049c2\",\"display\":\"Carol White\"}}";
/* 04-mfa-required-and-verify.json #0 (legacy 5.0.10 shape) */
static const char MFA_REQUIRED[] =
    "{\"login\":\"359146cb-6346-41e9-ba93-1e1d2bed6851\",\"mfaRequired\":true}";
/* the newest-release shape from the contract §3.3 */
static const char MFA_REQUIRED_NEWEST[] =
    "{\"login\":\"359146cb-6346-41e9-ba93-1e1d2bed6851\",\"mfaRequired\":true,"
    "\"mfaMethods\":[\"totp\"],\"email\":\"erin@example.com\"}";
static const char MFA_CODE[] =
    "{\"login\":\"359146cb-6346-41e9-ba93-1e1d2bed6851\",\"code\":\"" CODE "\"}";
static const char MFA_WRONG[] =
    "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":"
    "\"invalid\",\"details\":{\"text\":\"Invalid MFA token\"}}]}";
/* 08-login-inactive-membership.json #0 and #2 */
static const char PROFILE_NOT_ACTIVE[] =
    "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":"
    "\"invalid\",\"details\":{\"text\":\"Profile not active\"}}],\"extension\":[{\"url\":"
    "\"https://medplum.com/fhir/StructureDefinition/tracing\",\"extension\":[]}]}";
static const char WRONG_PASSWORD[] =
    "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":"
    "\"invalid\",\"details\":{\"text\":\"Email or password is invalid\"}}]}";
/* 09-login-patient-only.json #3 */
static const char TOKENS_PATIENT[] =
    "{\"token_type\":\"Bearer\",\"expires_in\":3600,\"access_token\":\"a.b.c\",\"project\":{"
    "\"reference\":\"Project/" PROJECT "\"},\"profile\":{\"reference\":\"Patient/"
    "16d1ad44-82fc-4e2b-9d43-deded6133bc6\"},\"patient\":\"16d1ad44-82fc-4e2b-9d43-deded6133bc6\","
    "\"need_patient_banner\":true}";
/* 27-login-mfa-enroll-required.json #0 */
static const char MFA_ENROLL[] =
    "{\"login\":\"cc3b9072-a0a7-494a-85a3-9d0a0911bea5\",\"mfaEnrollRequired\":true,"
    "\"enrollUri\":\"otpauth://totp/medplum.com:Medplum%20-%20ivan%40example.com?secret=X\","
    "\"enrollQrCode\":\"data:image/png;base64,AAAA\"}";
/* 23-rate-limit-auth-loopback.json, request 161 */
static const char RATE_LIMITED[] =
    "{\"resourceType\":\"OperationOutcome\",\"id\":\"too-many-requests\",\"issue\":[{"
    "\"severity\":\"error\",\"code\":\"throttled\",\"details\":{\"text\":\"Too Many Requests\"},"
    "\"diagnostics\":\"{\\\"_remainingPoints\\\":0,\\\"_msBeforeNext\\\":41234,"
    "\\\"_consumedPoints\\\":161,\\\"_isFirstInDuration\\\":false,\\\"limit\\\":160}\"}]}";
static const char EXPRESS_500[] = "{\"msg\":\"Internal Server Error\"}";

/* ---- scripted transport ---- */

struct scripted {
    const char *path;
    long status;
    mp_net_result net;
    const char *body;
    const char *ratelimit;
};

struct script {
    const struct scripted *steps;
    size_t nsteps, next;
    char bodies[8][2048]; /* what the flow sent, per request */
    char paths[8][64];
    char bearer[8][128];
};

static int scripted_perform(void *ctx, const struct mp_http_request *req,
                            struct mp_http_response *resp)
{
    struct script *s = ctx;
    const struct scripted *st;

    memset(resp, 0, sizeof(*resp));
    assert_true(s->next < s->nsteps);
    st = &s->steps[s->next];
    snprintf(s->paths[s->next], sizeof(s->paths[0]), "%s", req->path);
    snprintf(s->bodies[s->next], sizeof(s->bodies[0]), "%.*s", (int)req->body_len,
             req->body ? req->body : "");
    snprintf(s->bearer[s->next], sizeof(s->bearer[0]), "%s", req->bearer ? req->bearer : "");
    s->next++;
    assert_string_equal(req->path, st->path);
    resp->net = st->net;
    if (st->net != MP_NET_OK) {
        snprintf(resp->error, sizeof(resp->error), "scripted failure");
        return -1;
    }
    resp->status = st->status;
    resp->body = strdup(st->body ? st->body : "");
    resp->body_len = strlen(resp->body);
    resp->ratelimit = st->ratelimit ? strdup(st->ratelimit) : NULL;
    return 0;
}

static const char *mfa_answer;
static int conv_asks;

static int ask_secret(void *ctx, const char *prompt, char **answer)
{
    (void)ctx;
    conv_asks++;
    assert_string_equal(prompt, "Authenticator code: ");
    *answer = mfa_answer ? strdup(mfa_answer) : NULL;
    return mfa_answer ? 0 : -1;
}

static void tell(void *ctx, bool error, const char *message)
{
    (void)ctx;
    (void)error;
    (void)message;
}

static struct mp_config cfg;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(mp_config_init(&cfg), 0);
    assert_int_equal(mp_config_parse(&cfg, "test.conf",
                                     "base_url = https://medplum.test/\n"
                                     "project_id = " PROJECT "\n",
                                     NULL),
                     0);
    mfa_answer = NULL;
    conv_asks = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mp_config_free(&cfg);
    return 0;
}

static mp_status run(struct script *s, const char *expected_profile, struct mp_login_result *r)
{
    struct mp_transport t = {scripted_perform, s};
    struct mp_conv conv = {ask_secret, tell, NULL};
    struct mp_login_params p = {"alice", "alice@example.com", "s3cret pass", expected_profile,
                                false};
    return mp_login_run(&cfg, &t, &conv, NULL, &p, r);
}

#define SCRIPT(...)                                                                                \
    static const struct scripted steps[] = {__VA_ARGS__};                                          \
    struct script s = {steps, sizeof(steps) / sizeof(steps[0]), 0, {{0}}, {{0}}, {{0}}};           \
    struct mp_login_result r

static void assert_all_steps_used(const struct script *s)
{
    assert_int_equal(s->next, s->nsteps);
}

static void single_membership_success(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, LOGIN_CODE, NULL},
           {"oauth2/token", 200, MP_NET_OK, TOKENS_ALICE, NULL},
           {"oauth2/logout", 200, MP_NET_OK, LOGOUT_OK, NULL});

    assert_int_equal(run(&s, NULL, &r), MP_OK);
    assert_string_equal(r.profile, ALICE);
    assert_string_equal(r.profile_display, "Alice Smith");
    assert_null(r.access_token); /* logged out and wiped */
    assert_all_steps_used(&s);
    /* login request: projectId, resourceType, S256 challenge, exact password */
    assert_non_null(strstr(s.bodies[0], "\"password\":\"s3cret pass\""));
    assert_non_null(strstr(s.bodies[0], "\"projectId\":\"" PROJECT "\""));
    assert_non_null(strstr(s.bodies[0], "\"resourceType\":\"Practitioner\""));
    assert_non_null(strstr(s.bodies[0], "\"codeChallengeMethod\":\"S256\""));
    assert_null(strstr(s.bodies[0], "clientId"));
    /* token form: the code, no client_id (none sent at login), verifier matching */
    assert_non_null(strstr(s.bodies[1], "grant_type=authorization_code&code=" CODE));
    assert_null(strstr(s.bodies[1], "client_id"));
    assert_string_equal(s.bearer[2], "eyJh.eyJhY2Nlc3M.sig");
    mp_login_result_clear(&r);
}

/* The S256 challenge sent at login is base64url(sha256(verifier sent at token)). */
static void pkce_pair_matches(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, LOGIN_CODE, NULL},
           {"oauth2/token", 200, MP_NET_OK, TOKENS_ALICE, NULL},
           {"oauth2/logout", 200, MP_NET_OK, LOGOUT_OK, NULL});
    char challenge[64] = "", verifier[200] = "", expect[64];
    uint8_t digest[MP_SHA256_LEN];
    const char *c, *v;

    assert_int_equal(run(&s, NULL, &r), MP_OK);
    c = strstr(s.bodies[0], "\"codeChallenge\":\"");
    v = strstr(s.bodies[1], "code_verifier=");
    assert_non_null(c);
    assert_non_null(v);
    sscanf(c + 17, "%63[^\"]", challenge);
    sscanf(v + 14, "%199[^&]", verifier);
    assert_int_equal(strlen(verifier), 64);
    mp_sha256(verifier, strlen(verifier), digest);
    mp_base64url(digest, sizeof(digest), expect, sizeof(expect));
    assert_string_equal(challenge, expect);
    mp_login_result_clear(&r);
}

static void client_id_sent_to_login_and_token(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, LOGIN_CODE, NULL},
           {"oauth2/token", 200, MP_NET_OK, TOKENS_ALICE, NULL},
           {"oauth2/logout", 200, MP_NET_OK, LOGOUT_OK, NULL});

    free(cfg.client_id);
    cfg.client_id = strdup(CLIENT);
    assert_int_equal(run(&s, NULL, &r), MP_OK);
    assert_non_null(strstr(s.bodies[0], "\"clientId\":\"" CLIENT "\""));
    assert_non_null(strstr(s.bodies[1], "&client_id=" CLIENT));
    mp_login_result_clear(&r);
}

static void memberships_pick_our_project(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, MEMBERSHIPS_CAROL, NULL},
           {"auth/profile", 200, MP_NET_OK, PROFILE_CODE_CAROL, NULL},
           {"oauth2/token", 200, MP_NET_OK, TOKENS_CAROL, NULL},
           {"oauth2/logout", 200, MP_NET_OK, LOGOUT_OK, NULL});

    assert_int_equal(run(&s, NULL, &r), MP_OK);
    assert_non_null(strstr(s.bodies[1], "\"profile\":\"78c582d1-b7af-4989-a094-9884dee7ddb8\""));
    assert_string_equal(r.membership_id, "78c582d1-b7af-4989-a094-9884dee7ddb8");
    assert_all_steps_used(&s);
    mp_login_result_clear(&r);
}

static void memberships_none_in_project(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, MEMBERSHIPS_CAROL, NULL});

    free(cfg.project_id);
    cfg.project_id = strdup("00000000-0000-4000-8000-000000000000");
    assert_int_equal(run(&s, NULL, &r), MP_DENIED);
    assert_non_null(strstr(r.reason, "no membership"));
    assert_all_steps_used(&s);
}

static void mfa_legacy_and_newest_shapes(void **state)
{
    const char *shapes[] = {MFA_REQUIRED, MFA_REQUIRED_NEWEST};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        const struct scripted steps[] = {{"auth/login", 200, MP_NET_OK, shapes[i], NULL},
                                         {"auth/mfa/verify", 200, MP_NET_OK, MFA_CODE, NULL},
                                         {"oauth2/token", 200, MP_NET_OK, TOKENS_ALICE, NULL},
                                         {"oauth2/logout", 200, MP_NET_OK, LOGOUT_OK, NULL}};
        struct script s = {steps, 4, 0, {{0}}, {{0}}, {{0}}};
        struct mp_login_result r;

        mfa_answer = "123 456";
        assert_int_equal(run(&s, NULL, &r), MP_OK);
        assert_true(r.mfa_used);
        assert_non_null(strstr(s.bodies[1], "\"token\":\"123456\""));
        assert_all_steps_used(&s);
        mp_login_result_clear(&r);
    }
}

static void mfa_wrong_code_denied(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, MFA_REQUIRED, NULL},
           {"auth/mfa/verify", 400, MP_NET_OK, MFA_WRONG, NULL});

    mfa_answer = "000000";
    assert_int_equal(run(&s, NULL, &r), MP_DENIED);
    assert_non_null(strstr(r.reason, "wrong MFA code"));
    assert_all_steps_used(&s);
}

static void mfa_no_answer_sends_nothing(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, MFA_REQUIRED, NULL});

    mfa_answer = "abc"; /* not digits: refused locally */
    assert_int_equal(run(&s, NULL, &r), MP_DENIED);
    assert_int_equal(conv_asks, 1);
    assert_all_steps_used(&s);
}

static void mfa_enroll_required_denied_with_message(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, MFA_ENROLL, NULL});

    assert_int_equal(run(&s, NULL, &r), MP_DENIED);
    assert_non_null(strstr(r.user_message, "Enroll"));
    assert_all_steps_used(&s);
}

static void inactive_membership_denied(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 400, MP_NET_OK, PROFILE_NOT_ACTIVE, NULL});

    assert_int_equal(run(&s, NULL, &r), MP_DENIED);
    assert_non_null(strstr(r.reason, "membership inactive"));
    assert_true(r.membership_inactive);
}

static void wrong_password_denied(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 400, MP_NET_OK, WRONG_PASSWORD, NULL});

    assert_int_equal(run(&s, NULL, &r), MP_DENIED);
    assert_non_null(strstr(r.reason, "wrong password"));
    assert_false(r.membership_inactive);
    assert_string_equal(r.user_message, "");
}

static void patient_profile_denied(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, LOGIN_CODE, NULL},
           {"oauth2/token", 200, MP_NET_OK, TOKENS_PATIENT, NULL});

    assert_int_equal(run(&s, NULL, &r), MP_DENIED);
    assert_non_null(strstr(r.reason, "profile type"));
    assert_null(r.access_token);
}

static void wrong_project_in_token_denied(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, LOGIN_CODE, NULL},
           {"oauth2/token", 200, MP_NET_OK, TOKENS_ALICE, NULL});

    free(cfg.project_id);
    cfg.project_id = strdup("1fc16d77-8591-4505-a1fe-3d126c1e1f6b");
    assert_int_equal(run(&s, NULL, &r), MP_DENIED);
    assert_non_null(strstr(r.reason, "wrong project"));
}

static void bound_name_with_other_practitioner_denied(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, LOGIN_CODE, NULL},
           {"oauth2/token", 200, MP_NET_OK, TOKENS_ALICE, NULL});

    assert_int_equal(run(&s, "Practitioner/e33739bb-453b-4230-a895-e1e73d3049c2", &r), MP_DENIED);
    assert_non_null(strstr(r.reason, "bound"));
}

static void rate_limited_is_unavailable_with_wait(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 429, MP_NET_OK, RATE_LIMITED, "\"requests\";r=0;t=41"});

    assert_int_equal(run(&s, NULL, &r), MP_UNAVAILABLE);
    assert_int_equal(r.retry_after, 42); /* 41234 ms rounded up */
    assert_all_steps_used(&s);           /* and no retry */
}

static void server_error_is_unavailable(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 500, MP_NET_OK, EXPRESS_500, NULL});

    assert_int_equal(run(&s, NULL, &r), MP_UNAVAILABLE);
}

static void network_failure_is_unavailable(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 0, MP_NET_TIMEOUT, NULL, NULL});

    assert_int_equal(run(&s, NULL, &r), MP_UNAVAILABLE);
    assert_non_null(strstr(r.reason, "timeout"));
}

static void tls_failure_is_error_not_unavailable(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 0, MP_NET_TLS, NULL, NULL});

    assert_int_equal(run(&s, NULL, &r), MP_ERROR);
}

static void garbage_200_is_error(void **state)
{
    const char *garbage[] = {"<html>hi</html>",
                             "[1,2]",
                             "{\"login\":42,\"code\":\"x\"}",
                             "{\"login\":\"" LOGIN_ID "\"}",
                             "",
                             "{\"login\":\"../../etc\","
                             "\"code\":\"" CODE "\"}"};

    (void)state;
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        const struct scripted steps[] = {{"auth/login", 200, MP_NET_OK, garbage[i], NULL}};
        struct script s = {steps, 1, 0, {{0}}, {{0}}, {{0}}};
        struct mp_login_result r;

        assert_int_equal(run(&s, NULL, &r), MP_ERROR);
    }
}

static void token_error_after_code_is_error(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, LOGIN_CODE, NULL},
           {"oauth2/token", 400, MP_NET_OK,
            "{\"error\":\"invalid_request\",\"error_description\":\"Invalid code verifier\"}",
            NULL});

    assert_int_equal(run(&s, NULL, &r), MP_ERROR);
    assert_non_null(strstr(r.reason, "Invalid code verifier"));
}

static void keep_session_returns_token_without_logout(void **state)
{
    (void)state;
    SCRIPT({"auth/login", 200, MP_NET_OK, LOGIN_CODE, NULL},
           {"oauth2/token", 200, MP_NET_OK, TOKENS_ALICE, NULL});
    struct mp_transport t = {scripted_perform, &s};
    struct mp_login_params p = {"alice", "alice@example.com", "pw", NULL, true};

    assert_int_equal(mp_login_run(&cfg, &t, NULL, NULL, &p, &r), MP_OK);
    assert_string_equal(r.access_token, "eyJh.eyJhY2Nlc3M.sig");
    assert_all_steps_used(&s);
    mp_login_result_clear(&r);
    assert_null(r.access_token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(single_membership_success, setup, teardown),
        cmocka_unit_test_setup_teardown(pkce_pair_matches, setup, teardown),
        cmocka_unit_test_setup_teardown(client_id_sent_to_login_and_token, setup, teardown),
        cmocka_unit_test_setup_teardown(memberships_pick_our_project, setup, teardown),
        cmocka_unit_test_setup_teardown(memberships_none_in_project, setup, teardown),
        cmocka_unit_test_setup_teardown(mfa_legacy_and_newest_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(mfa_wrong_code_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(mfa_no_answer_sends_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(mfa_enroll_required_denied_with_message, setup, teardown),
        cmocka_unit_test_setup_teardown(inactive_membership_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_password_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(patient_profile_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_project_in_token_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(bound_name_with_other_practitioner_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(rate_limited_is_unavailable_with_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(server_error_is_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(network_failure_is_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(tls_failure_is_error_not_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_200_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(token_error_after_code_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(keep_session_returns_token_without_logout, setup, teardown),
    };
    return cmocka_run_group_tests_name("login flow", tests, NULL, NULL);
}
