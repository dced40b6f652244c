#include "mp_offline.h"

#include <stdio.h>
#include <string.h>

#include "mp_secret.h"
#include "mp_state.h"
#include "mp_verifier.h"

/* A last login "in the future" beyond this is a clock that was set back:
 * it must not stretch the TTL. */
#define MP_CLOCK_SKEW 300

static void not_possible(struct mp_offline_result *r, const char *why)
{
    r->outcome = MP_OFFLINE_NOT_POSSIBLE;
    snprintf(r->reason, sizeof(r->reason), "offline login not possible: %s", why);
}

static bool fresh_active(const struct mp_config *cfg, const struct mp_user_state *st, int64_t now)
{
    int64_t age = now - st->membership_checked_at;

    return st->membership == MP_MEMBERSHIP_ACTIVE && st->membership_checked_at != 0 &&
           age >= -MP_CLOCK_SKEW && age < cfg->membership_max_age;
}

/* The conditions that need no password; false (reason set) if one fails. */
static bool allowed(const struct mp_config *cfg, const struct mp_offline_request *req,
                    const struct mp_user_state *st, int64_t now, struct mp_offline_result *r)
{
    int64_t age = now - st->last_online_login;

    if (cfg->offline_ttl == 0)
        not_possible(r, "disabled (offline_ttl = 0)");
    else if (!st->has_verifier || st->last_online_login == 0)
        not_possible(r, "no verifier (no online login since the last denial or purge)");
    else if (age < -MP_CLOCK_SKEW || age >= cfg->offline_ttl)
        not_possible(r, "last online login is older than offline_ttl");
    else if (st->membership == MP_MEMBERSHIP_INACTIVE || st->membership == MP_MEMBERSHIP_ABSENT)
        not_possible(r, "membership known to be revoked");
    else if (st->mfa_user && !cfg->offline_allow_mfa_users)
        not_possible(r, "user needs MFA and offline_allow_mfa_users = no");
    else if (req->expected_profile != NULL && strcmp(st->profile, req->expected_profile) != 0)
        not_possible(r, "the verifier is not from the Practitioner this name is bound to");
    else if (req->rate_limited && !fresh_active(cfg, st, now))
        not_possible(r, "Medplum is rate limiting this host, and the membership is not known "
                        "active within membership_max_age");
    else
        return true;
    return false;
}

void mp_offline_login(const struct mp_config *cfg, const struct mp_offline_request *req,
                      int64_t now, struct mp_offline_result *r, const mp_logger *log)
{
    const char *user = req->user;
    const char *password = req->password;
    struct mp_user_state st;
    char *verifier = NULL;
    int rc;

    memset(r, 0, sizeof(*r));
    if (mp_state_get_user(cfg->cache_dir, user, &st, log) != 0) {
        not_possible(r, "state unreadable");
        return;
    }
    r->last_online_login = st.last_online_login;
    if (!allowed(cfg, req, &st, now, r))
        return;
    rc = mp_state_offline_begin(cfg->cache_dir, user, (unsigned)cfg->offline_max_failures, log);
    if (rc != 0) {
        not_possible(r, rc > 0 ? "too many offline failures in a row (until the next online "
                                 "login)"
                               : "cannot count the attempt");
        return;
    }
    if (mp_state_get_verifier(cfg->cache_dir, user, &verifier, log) != 0 || verifier == NULL) {
        not_possible(r, "verifier vanished");
        return;
    }
    if (!mp_verifier_check(verifier, password)) {
        r->outcome = MP_OFFLINE_WRONG_PASSWORD;
        snprintf(r->reason, sizeof(r->reason),
                 "offline: wrong password (%u of %lu failures "
                 "in a row)",
                 st.offline_failures + 1, cfg->offline_max_failures);
    } else {
        r->outcome = MP_OFFLINE_OK;
        snprintf(r->reason, sizeof(r->reason),
                 "offline: password matches the verifier of the "
                 "online login %lld s ago",
                 (long long)(now - st.last_online_login));
        if (mp_state_offline_succeeded(cfg->cache_dir, user, log) != 0)
            mp_log(log, LOG_WARNING, "user %s: cannot reset the offline failure count", user);
    }
    mp_secret_free(verifier);
}
