/*
 * The policies on top of mp_state: backoff arithmetic, the yescrypt
 * verifier, the membership search interpretation, the account decision and
 * the offline conditions, with a scripted transport (no network) and the
 * clock as a plain parameter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mp_acct.h"
#include "mp_backoff.h"
#include "mp_config.h"
#include "mp_membership.h"
#include "mp_offline.h"
#include "mp_secret.h"
#include "mp_state.h"
#include "mp_verifier.h"

#define PROJECT "ce04dfeb-96a9-49e7-abb8-098580eeed12"
#define OTHER_PROJECT "1fc16d77-8591-4505-a1fe-3d126c1e1f6b"
#define ALICE "Practitioner/7618b02a-aace-465e-96d6-68f936dcf006"
#define HOST_CLIENT "d0206ce7-0143-4468-8f90-7bacdf90ab84"
#define T0 1800000000

static void quiet(void *ctx, int priority, const char *message)
{
    (void)ctx;
    (void)priority;
    (void)message;
}

static const mp_logger log_quiet = {quiet, NULL, false};

/* ---- scripted transport ---- */

struct script {
    const char *bodies[4];
    long statuses[4];
    mp_net_result nets[4];
    int n, next;
    char paths[4][256];
};

static int scripted(void *ctx, const struct mp_http_request *req, struct mp_http_response *resp)
{
    struct script *s = ctx;
    int i = s->next++;

    memset(resp, 0, sizeof(*resp));
    if (i >= s->n) {
        resp->net = MP_NET_CONNECT;
        return -1;
    }
    snprintf(s->paths[i], sizeof(s->paths[i]), "%s", req->path);
    resp->net = s->nets[i];
    resp->status = s->statuses[i];
    if (s->bodies[i] != NULL) {
        resp->body = strdup(s->bodies[i]);
        resp->body_len = strlen(resp->body);
    }
    return resp->net == MP_NET_OK ? 0 : -1;
}

static const char TOKEN[] =
    "{\"access_token\":\"a.b.c\",\"token_type\":\"Bearer\",\"project\":{\"reference\":"
    "\"Project/" PROJECT "\"},\"profile\":{\"reference\":\"ClientApplication/" HOST_CLIENT "\"}}";
static const char OK[] = "{\"resourceType\":\"OperationOutcome\",\"id\":\"ok\",\"issue\":[]}";

static const char *bundle(const char *active_field, const char *project)
{
    static char buf[1024];

    snprintf(buf, sizeof(buf),
             "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[{\"resource\":{"
             "\"resourceType\":\"ProjectMembership\",\"id\":\"4edb6ccf-7c65-40f9-b077-"
             "fef2cd7fb120\",\"project\":{\"reference\":\"Project/%s\"},\"profile\":{"
             "\"reference\":\"" ALICE "\"}%s}}]}",
             project, active_field);
    return buf;
}

static const char EMPTY_BUNDLE[] = "{\"resourceType\":\"Bundle\",\"type\":\"searchset\"}";

/* ---- fixture: a config in a temporary cache dir ---- */

struct fx {
    struct mp_config cfg;
    char dir[64];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mp-policy-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL || mp_config_init(&f->cfg) != 0) {
        free(f);
        return -1;
    }
    chmod(f->dir, 0755);
    free(f->cfg.cache_dir);
    f->cfg.cache_dir = strdup(f->dir);
    f->cfg.project_id = strdup(PROJECT);
    f->cfg.path = strdup("test.conf");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    mp_config_free(&f->cfg);
    free(f);
    return 0;
}

static void with_host_credentials(struct fx *f)
{
    f->cfg.host_client_id = strdup(HOST_CLIENT);
    f->cfg.host_client_secret = strdup("0123456789abcdef");
}

/* ---- backoff ---- */

static void backoff_doubles_to_the_ceiling(void **state)
{
    (void)state;
    assert_int_equal(mp_backoff_delay(1, 60, 900), 60);
    assert_int_equal(mp_backoff_delay(2, 60, 900), 120);
    assert_int_equal(mp_backoff_delay(4, 60, 900), 480);
    assert_int_equal(mp_backoff_delay(5, 60, 900), 900);
    assert_int_equal(mp_backoff_delay(1000, 60, 900), 900);
    assert_int_equal(mp_backoff_delay(3, 900, 60), 900); /* max below base: base wins */
}

static void backoff_jitter_and_retry_after(void **state)
{
    struct mp_backoff_state st = {0};

    (void)state;
    mp_backoff_next(&st, 60, 900, T0, 0, 0, "x");
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.first_failure, T0);
    assert_int_equal(st.until, T0 + 60);
    mp_backoff_next(&st, 60, 900, T0 + 60, 0, 1000, "x");
    assert_int_equal(st.failures, 2);
    assert_int_equal(st.first_failure, T0);
    assert_int_equal(st.until, T0 + 60 + 90); /* 120 minus the full 25 % */
    mp_backoff_next(&st, 60, 900, T0 + 200, 600, 0, "429");
    assert_int_equal(st.until, T0 + 200 + 600); /* a 429's wait wins */
    mp_backoff_next(&st, 60, 900, T0 + 900, 5000, 0, "429");
    assert_int_equal(st.until, T0 + 900 + 900); /* but never beyond the ceiling */
}

static void backoff_active_window(void **state)
{
    struct fx *f = *state;
    struct mp_backoff_state st = {1, T0, T0, T0 + 60, "down"};
    long remaining;

    assert_false(mp_backoff_active(&f->cfg, T0, &remaining, &log_quiet));
    assert_int_equal(mp_state_set_backoff(f->dir, &st, &log_quiet), 0);
    assert_true(mp_backoff_active(&f->cfg, T0 + 1, &remaining, &log_quiet));
    assert_int_equal(remaining, 59);
    assert_false(mp_backoff_active(&f->cfg, T0 + 60, &remaining, &log_quiet));
    /* A clock set back by a day must not stretch the backoff to a day. */
    assert_false(mp_backoff_active(&f->cfg, T0 - 86400, &remaining, &log_quiet));
    mp_backoff_success(&f->cfg, &log_quiet);
    assert_false(mp_backoff_active(&f->cfg, T0 + 1, &remaining, &log_quiet));
}

/* ---- verifier ---- */

static void verifier_roundtrip(void **state)
{
    char *v = mp_verifier_make("correct horse", &log_quiet);
    char *w = mp_verifier_make("correct horse", &log_quiet);

    (void)state;
    assert_non_null(v);
    assert_memory_equal(v, "$y$", 3);
    assert_string_not_equal(v, w); /* salted */
    assert_true(mp_verifier_check(v, "correct horse"));
    assert_false(mp_verifier_check(v, "correct horsE"));
    assert_false(mp_verifier_check(v, ""));
    assert_false(mp_verifier_check("*0", "correct horse"));
    assert_false(mp_verifier_check(NULL, "correct horse"));
    mp_secret_free(v);
    mp_secret_free(w);
}

/* ---- membership search ---- */

static void membership_bundles(void **state)
{
    struct fx *f = *state;
    enum mp_membership_state s;
    char reason[256];
    const char *b;

    b = bundle("", PROJECT); /* no `active`: invited in 5.0.10, active */
    assert_int_equal(
        mp_membership_from_bundle(&f->cfg, ALICE, b, strlen(b), &s, reason, sizeof(reason)), MP_OK);
    assert_int_equal(s, MP_MEMBERSHIP_ACTIVE);
    b = bundle(",\"active\":false", PROJECT);
    assert_int_equal(
        mp_membership_from_bundle(&f->cfg, ALICE, b, strlen(b), &s, reason, sizeof(reason)), MP_OK);
    assert_int_equal(s, MP_MEMBERSHIP_INACTIVE);
    b = bundle(",\"active\":true", OTHER_PROJECT); /* another project does not count */
    assert_int_equal(
        mp_membership_from_bundle(&f->cfg, ALICE, b, strlen(b), &s, reason, sizeof(reason)), MP_OK);
    assert_int_equal(s, MP_MEMBERSHIP_ABSENT);
    assert_int_equal(mp_membership_from_bundle(&f->cfg, ALICE, EMPTY_BUNDLE, strlen(EMPTY_BUNDLE),
                                               &s, reason, sizeof(reason)),
                     MP_OK);
    assert_int_equal(s, MP_MEMBERSHIP_ABSENT);
    assert_int_equal(
        mp_membership_from_bundle(&f->cfg, ALICE, OK, strlen(OK), &s, reason, sizeof(reason)),
        MP_ERROR);
    assert_int_equal(mp_membership_from_bundle(&f->cfg, ALICE, "[", 1, &s, reason, sizeof(reason)),
                     MP_ERROR);
}

static void membership_lookup_rejected_host_is_error(void **state)
{
    struct fx *f = *state;
    struct script s = {{"{\"error\":\"invalid_request\",\"error_description\":\"Invalid secret\"}"},
                       {400},
                       {MP_NET_OK},
                       1,
                       0,
                       {""}};
    struct mp_transport t = {scripted, &s};
    enum mp_membership_state m;
    char reason[256];

    with_host_credentials(f);
    assert_int_equal(
        mp_membership_lookup(&f->cfg, &t, ALICE, &m, reason, sizeof(reason), &log_quiet), MP_ERROR);
    assert_int_equal(m, MP_MEMBERSHIP_UNKNOWN);
}

/* ---- account decision ---- */

static void acct(struct fx *f, const struct mp_transport *t, int64_t now, struct mp_acct_result *r)
{
    struct mp_acct_request req = {"alice", ALICE, now, t};

    mp_acct_decide(&f->cfg, &req, r, &log_quiet);
}

static void acct_fresh_state_needs_no_network(void **state)
{
    struct fx *f = *state;
    struct script s = {{NULL}, {0}, {MP_NET_OK}, 0, 0, {""}};
    struct mp_transport t = {scripted, &s};
    struct mp_acct_result r;

    with_host_credentials(f);
    assert_int_equal(mp_state_set_membership(f->dir, "alice", MP_MEMBERSHIP_ACTIVE, T0, &log_quiet),
                     0);
    acct(f, &t, T0 + 3599, &r);
    assert_true(r.allow);
    assert_int_equal(s.next, 0);
    assert_int_equal(
        mp_state_set_membership(f->dir, "alice", MP_MEMBERSHIP_INACTIVE, T0, &log_quiet), 0);
    acct(f, &t, T0 + 10, &r);
    assert_false(r.allow);
    assert_string_equal(r.user_message, MP_MSG_MEMBERSHIP_ENDED);
    assert_int_equal(s.next, 0);
}

static void acct_stale_state_live_check(void **state)
{
    struct fx *f = *state;
    struct script s = {
        {TOKEN, NULL, OK}, {200, 200, 200}, {MP_NET_OK, MP_NET_OK, MP_NET_OK}, 3, 0, {""}};
    struct mp_transport t = {scripted, &s};
    struct mp_acct_result r;
    struct mp_user_state st;

    s.bodies[1] = bundle(",\"active\":false", PROJECT);
    with_host_credentials(f);
    assert_int_equal(mp_state_set_membership(f->dir, "alice", MP_MEMBERSHIP_ACTIVE, T0, &log_quiet),
                     0);
    acct(f, &t, T0 + 3600, &r);
    assert_false(r.allow);
    assert_int_equal(r.membership, MP_MEMBERSHIP_INACTIVE);
    assert_string_equal(s.paths[0], "oauth2/token");
    assert_string_equal(s.paths[1], "fhir/R4/ProjectMembership?profile=" ALICE "&_count=50");
    assert_string_equal(s.paths[2], "oauth2/logout");
    assert_int_equal(mp_state_get_user(f->dir, "alice", &st, &log_quiet), 0);
    assert_int_equal(st.membership, MP_MEMBERSHIP_INACTIVE);
    assert_int_equal(st.membership_checked_at, T0 + 3600);
}

static void acct_unknown_policy(void **state)
{
    struct fx *f = *state;
    struct mp_acct_result r;

    acct(f, NULL, T0, &r); /* nothing known, no host credentials */
    assert_false(r.allow);
    assert_string_equal(r.user_message, MP_MSG_MEMBERSHIP_UNKNOWN);
    f->cfg.account_unknown = MP_ACCOUNT_UNKNOWN_ALLOW;
    acct(f, NULL, T0, &r);
    assert_true(r.allow);
    /* ... but a membership last known as revoked stays denied. */
    assert_int_equal(mp_state_set_membership(f->dir, "alice", MP_MEMBERSHIP_ABSENT, T0, &log_quiet),
                     0);
    acct(f, NULL, T0 + 86400, &r);
    assert_false(r.allow);
    /* A state dated in the future (clock set back) is not fresh. */
    f->cfg.account_unknown = MP_ACCOUNT_UNKNOWN_DENY;
    assert_int_equal(
        mp_state_set_membership(f->dir, "alice", MP_MEMBERSHIP_ACTIVE, T0 + 86400, &log_quiet), 0);
    acct(f, NULL, T0, &r);
    assert_false(r.allow);
}

static void acct_network_failure_backs_off(void **state)
{
    struct fx *f = *state;
    struct script s = {{NULL}, {0}, {MP_NET_TIMEOUT}, 1, 0, {""}};
    struct mp_transport t = {scripted, &s};
    struct mp_acct_result r;
    struct mp_backoff_state b;

    with_host_credentials(f);
    acct(f, &t, T0, &r);
    assert_false(r.allow);
    assert_int_equal(s.next, 1);
    assert_int_equal(mp_state_get_backoff(f->dir, &b, &log_quiet), 0);
    assert_int_equal(b.failures, 1);
    acct(f, &t, T0 + 1, &r); /* within the backoff: no request */
    assert_int_equal(s.next, 1);
}

/* ---- offline conditions ---- */

static void offline_as(struct fx *f, const char *password, const char *bound_to, bool rate_limited,
                       int64_t now, struct mp_offline_result *r)
{
    struct mp_offline_request req = {"alice", password, bound_to, rate_limited};

    mp_offline_login(&f->cfg, &req, now, r, &log_quiet);
}

static void offline(struct fx *f, const char *password, int64_t now, struct mp_offline_result *r,
                    const mp_logger *log)
{
    (void)log;
    offline_as(f, password, NULL, false, now, r);
}

static void offline_conditions(void **state)
{
    struct fx *f = *state;
    struct mp_offline_result r;
    char *v = mp_verifier_make("pw-1", &log_quiet);

    offline(f, "pw-1", T0, &r, &log_quiet);
    assert_int_equal(r.outcome, MP_OFFLINE_NOT_POSSIBLE);
    assert_int_equal(mp_state_record_login(f->dir, "alice", ALICE, v, false, T0, &log_quiet), 0);
    offline(f, "pw-1", T0 + 10, &r, &log_quiet);
    assert_int_equal(r.outcome, MP_OFFLINE_OK);
    offline(f, "pw-2", T0 + 10, &r, &log_quiet);
    assert_int_equal(r.outcome, MP_OFFLINE_WRONG_PASSWORD);
    offline(f, "pw-1", T0 + f->cfg.offline_ttl, &r, &log_quiet);
    assert_int_equal(r.outcome, MP_OFFLINE_NOT_POSSIBLE);
    offline(f, "pw-1", T0 - 3600, &r, &log_quiet); /* clock set back */
    assert_int_equal(r.outcome, MP_OFFLINE_NOT_POSSIBLE);
    f->cfg.offline_ttl = 0;
    offline(f, "pw-1", T0 + 10, &r, &log_quiet);
    assert_int_equal(r.outcome, MP_OFFLINE_NOT_POSSIBLE);
    f->cfg.offline_ttl = 259200;
    /* MFA users only with offline_allow_mfa_users */
    assert_int_equal(mp_state_record_login(f->dir, "alice", ALICE, v, true, T0, &log_quiet), 0);
    offline(f, "pw-1", T0 + 10, &r, &log_quiet);
    assert_int_equal(r.outcome, MP_OFFLINE_NOT_POSSIBLE);
    f->cfg.offline_allow_mfa_users = true;
    offline(f, "pw-1", T0 + 10, &r, &log_quiet);
    assert_int_equal(r.outcome, MP_OFFLINE_OK);
    mp_secret_free(v);
}

/* A name re-bound to another Practitioner never opens with the previous
 * holder's verifier (found in review: email change, then an outage). */
static void offline_verifier_bound_to_practitioner(void **state)
{
    struct fx *f = *state;
    struct mp_offline_result r;
    char *v = mp_verifier_make("pw-1", &log_quiet);

    assert_int_equal(mp_state_record_login(f->dir, "alice", ALICE, v, false, T0, &log_quiet), 0);
    offline_as(f, "pw-1", ALICE, false, T0 + 10, &r);
    assert_int_equal(r.outcome, MP_OFFLINE_OK);
    offline_as(f, "pw-1", "Practitioner/e33739bb-453b-4230-a895-e1e73d3049c2", false, T0 + 10, &r);
    assert_int_equal(r.outcome, MP_OFFLINE_NOT_POSSIBLE);
    assert_non_null(strstr(r.reason, "bound to"));
    mp_secret_free(v);
}

/* A 429 is anyone's to cause: offline then needs a fresh known-active state. */
static void offline_under_rate_limit_needs_fresh_state(void **state)
{
    struct fx *f = *state;
    struct mp_offline_result r;
    char *v = mp_verifier_make("pw-1", &log_quiet);

    assert_int_equal(mp_state_record_login(f->dir, "alice", ALICE, v, false, T0, &log_quiet), 0);
    offline_as(f, "pw-1", NULL, true, T0 + 10, &r); /* the login itself recorded "active" */
    assert_int_equal(r.outcome, MP_OFFLINE_OK);
    offline_as(f, "pw-1", NULL, true, T0 + f->cfg.membership_max_age + 1, &r);
    assert_int_equal(r.outcome, MP_OFFLINE_NOT_POSSIBLE);
    assert_non_null(strstr(r.reason, "rate limiting"));
    offline_as(f, "pw-1", NULL, false, T0 + f->cfg.membership_max_age + 1, &r); /* an outage */
    assert_int_equal(r.outcome, MP_OFFLINE_OK);
    mp_secret_free(v);
}

static void offline_failure_limit(void **state)
{
    struct fx *f = *state;
    struct mp_offline_result r;
    char *v = mp_verifier_make("pw-1", &log_quiet);

    f->cfg.offline_max_failures = 3;
    assert_int_equal(mp_state_record_login(f->dir, "alice", ALICE, v, false, T0, &log_quiet), 0);
    for (int i = 0; i < 3; i++) {
        offline(f, "wrong", T0 + 10, &r, &log_quiet);
        assert_int_equal(r.outcome, MP_OFFLINE_WRONG_PASSWORD);
    }
    offline(f, "pw-1", T0 + 10, &r, &log_quiet);
    assert_int_equal(r.outcome, MP_OFFLINE_NOT_POSSIBLE);
    assert_int_equal(mp_state_record_login(f->dir, "alice", ALICE, v, false, T0, &log_quiet), 0);
    offline(f, "pw-1", T0 + 10, &r, &log_quiet);
    assert_int_equal(r.outcome, MP_OFFLINE_OK);
    mp_secret_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_doubles_to_the_ceiling),
        cmocka_unit_test(backoff_jitter_and_retry_after),
        cmocka_unit_test_setup_teardown(backoff_active_window, setup, teardown),
        cmocka_unit_test(verifier_roundtrip),
        cmocka_unit_test_setup_teardown(membership_bundles, setup, teardown),
        cmocka_unit_test_setup_teardown(membership_lookup_rejected_host_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(acct_fresh_state_needs_no_network, setup, teardown),
        cmocka_unit_test_setup_teardown(acct_stale_state_live_check, setup, teardown),
        cmocka_unit_test_setup_teardown(acct_unknown_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(acct_network_failure_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(offline_conditions, setup, teardown),
        cmocka_unit_test_setup_teardown(offline_verifier_bound_to_practitioner, setup, teardown),
        cmocka_unit_test_setup_teardown(offline_under_rate_limit_needs_fresh_state, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(offline_failure_limit, setup, teardown),
    };

    return cmocka_run_group_tests_name("state policies", tests, NULL, NULL);
}
