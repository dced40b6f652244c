/*
 * mp_chpass: the auth/changepassword request and what each answer tells the
 * user, on recorded shapes (contract §6.2, 5.0.10 transcripts 22 and 22a).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mp_chpass.h"

struct canned {
    mp_net_result net;
    long status;
    const char *body;
    char seen_body[512];
    char seen_bearer[64];
    char seen_path[64];
};

static int perform(void *ctx, const struct mp_http_request *req, struct mp_http_response *resp)
{
    struct canned *c = ctx;

    strncpy(c->seen_body, req->body, sizeof(c->seen_body) - 1);
    strncpy(c->seen_bearer, req->bearer ? req->bearer : "", sizeof(c->seen_bearer) - 1);
    strncpy(c->seen_path, req->path, sizeof(c->seen_path) - 1);
    memset(resp, 0, sizeof(*resp));
    resp->net = c->net;
    resp->status = c->status;
    if (c->body) {
        resp->body = strdup(c->body);
        resp->body_len = strlen(c->body);
    }
    return c->net == MP_NET_OK ? 0 : -1;
}

static mp_status run(struct canned *c, struct mp_chpass_result *r)
{
    struct mp_transport t = {perform, c};

    return mp_chpass_run(&t, "tok.en.x", "old-pw", "new \"pw\"", r, NULL);
}

static const char ALL_OK[] =
    "{\"resourceType\":\"OperationOutcome\",\"id\":\"ok\",\"issue\":[{\"severity\":"
    "\"information\",\"code\":\"informational\",\"details\":{\"text\":\"All OK\"}}]}";
static const char TOO_SHORT[] =
    "{\"resourceType\":\"OperationOutcome\",\"id\":\"3c3c4c8e-6d37-4bd4-a9a5-9e0c8d7cb1d1\","
    "\"issue\":[{\"severity\":\"error\",\"code\":\"invalid\",\"details\":{\"text\":\"Invalid "
    "password, must be at least 8 characters\"},\"expression\":[\"newPassword\"]}]}";
static const char INCORRECT[] =
    "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":"
    "\"invalid\",\"details\":{\"text\":\"Incorrect password\"},\"expression\":[\"oldPassword\"]}]}";
static const char BREACHED[] =
    "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":"
    "\"invalid\",\"details\":{\"text\":\"Password found in breach database\"},\"expression\":"
    "[\"newPassword\"]}]}";

static void success_sends_both_passwords_with_the_token(void **state)
{
    struct canned c = {MP_NET_OK, 200, ALL_OK, "", "", ""};
    struct mp_chpass_result r;

    (void)state;
    assert_int_equal(run(&c, &r), MP_OK);
    assert_string_equal(c.seen_path, "auth/changepassword");
    assert_string_equal(c.seen_bearer, "tok.en.x");
    assert_string_equal(c.seen_body,
                        "{\"oldPassword\":\"old-pw\",\"newPassword\":\"new \\\"pw\\\"\"}");
    assert_string_equal(r.user_message, "");
}

static void medplum_rules_in_medplums_words(void **state)
{
    struct canned c = {MP_NET_OK, 400, TOO_SHORT, "", "", ""};
    struct mp_chpass_result r;

    (void)state;
    assert_int_equal(run(&c, &r), MP_DENIED);
    assert_string_equal(r.user_message, "Medplum did not accept the new password: Invalid "
                                        "password, must be at least 8 characters");
    c.body = INCORRECT;
    assert_int_equal(run(&c, &r), MP_DENIED);
    assert_non_null(strstr(r.user_message, "Incorrect password"));
    c.body = BREACHED;
    assert_int_equal(run(&c, &r), MP_DENIED);
    assert_non_null(strstr(r.user_message, "Password found in breach database"));
}

static void hibp_500_is_explained_not_an_outage(void **state)
{
    struct canned c = {MP_NET_OK, 500, "{\"msg\":\"Internal Server Error\"}", "", "", ""};
    struct mp_chpass_result r;

    (void)state;
    assert_int_equal(run(&c, &r), MP_ERROR);
    assert_string_equal(r.user_message, MP_MSG_HIBP_UNREACHABLE);
    assert_int_equal(r.http_status, 500);
}

static void outage_and_expired_session(void **state)
{
    struct canned c = {MP_NET_TIMEOUT, 0, NULL, "", "", ""};
    struct mp_chpass_result r;

    (void)state;
    assert_int_equal(run(&c, &r), MP_UNAVAILABLE);
    assert_non_null(strstr(r.user_message, "cannot be reached"));
    c.net = MP_NET_OK;
    c.status = 503;
    c.body = "{\"msg\":\"Service Unavailable\"}";
    assert_int_equal(run(&c, &r), MP_UNAVAILABLE);
    c.status = 401;
    c.body = "{\"resourceType\":\"OperationOutcome\",\"id\":\"unauthorized\",\"issue\":[]}";
    assert_int_equal(run(&c, &r), MP_ERROR);
    assert_non_null(strstr(r.user_message, "session ended"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(success_sends_both_passwords_with_the_token),
        cmocka_unit_test(medplum_rules_in_medplums_words),
        cmocka_unit_test(hibp_500_is_explained_not_an_outage),
        cmocka_unit_test(outage_and_expired_session),
    };

    return cmocka_run_group_tests_name("chpass", tests, NULL, NULL);
}
