#include "mp_acct.h"

#include <stdio.h>
#include <string.h>

#include "mp_backoff.h"
#include "mp_membership.h"

/* A state learned "in the future" (clock set back) is not fresh: it would
 * otherwise stay fresh until the clock catches up. */
#define MP_CLOCK_SKEW 300

static bool revoked(enum mp_membership_state s)
{
    return s == MP_MEMBERSHIP_INACTIVE || s == MP_MEMBERSHIP_ABSENT;
}

static void decide(struct mp_acct_result *r, enum mp_membership_state s, const char *source,
                   int64_t age)
{
    r->membership = s;
    r->allow = s == MP_MEMBERSHIP_ACTIVE;
    r->user_message = r->allow ? NULL : MP_MSG_MEMBERSHIP_ENDED;
    snprintf(r->reason, sizeof(r->reason), "membership %s (%s, %lld s old)",
             mp_membership_state_name(s), source, (long long)age);
}

static bool fresh(const struct mp_config *cfg, const struct mp_user_state *st, int64_t now)
{
    int64_t age = now - st->membership_checked_at;

    return st->membership != MP_MEMBERSHIP_UNKNOWN && st->membership_checked_at > 0 &&
           age >= -MP_CLOCK_SKEW && age < cfg->membership_max_age;
}

/* Step 2; returns true when it produced a decision. */
static bool live_check(const struct mp_config *cfg, const struct mp_acct_request *req,
                       struct mp_acct_result *r, char *why, size_t why_len, const mp_logger *log)
{
    enum mp_membership_state s;
    char reason[256];
    long remaining;
    mp_status st;

    if (req->transport == NULL || !mp_membership_can_check(cfg)) {
        snprintf(why, why_len, "no host credentials for a live check");
        return false;
    }
    if (mp_backoff_active(cfg, req->now, &remaining, log)) {
        snprintf(why, why_len, "Medplum unreachable recently; no live check for %ld s", remaining);
        return false;
    }
    st = mp_membership_lookup(cfg, req->transport, req->profile, &s, reason, sizeof(reason), log);
    if (st != MP_OK) {
        if (mp_status_allows_offline(st))
            mp_backoff_failure(cfg, req->now, 0, reason, log);
        snprintf(why, why_len, "live check failed: %.200s", reason);
        return false;
    }
    mp_backoff_success(cfg, log);
    if (mp_state_set_membership(cfg->cache_dir, req->user, s, req->now, log) != 0)
        mp_log(log, LOG_WARNING, "user %s: cannot store the membership state", req->user);
    decide(r, s, "live check", 0);
    return true;
}

void mp_acct_decide(const struct mp_config *cfg, const struct mp_acct_request *req,
                    struct mp_acct_result *r, const mp_logger *log)
{
    struct mp_user_state st;
    char why[256];

    memset(r, 0, sizeof(*r));
    /* Unreadable state counts as unknown: it can only lead to a live check
     * or to account_unknown, never to a stale "active". */
    if (mp_state_get_user(cfg->cache_dir, req->user, &st, log) != 0)
        memset(&st, 0, sizeof(st));
    if (fresh(cfg, &st, req->now)) {
        decide(r, st.membership, "known state", req->now - st.membership_checked_at);
        return;
    }
    if (live_check(cfg, req, r, why, sizeof(why), log))
        return;
    r->membership = st.membership;
    if (revoked(st.membership)) {
        decide(r, st.membership, "last known state, not re-checked",
               req->now - st.membership_checked_at);
        return;
    }
    r->allow = cfg->account_unknown == MP_ACCOUNT_UNKNOWN_ALLOW;
    r->user_message = r->allow ? NULL : MP_MSG_MEMBERSHIP_UNKNOWN;
    snprintf(r->reason, sizeof(r->reason), "membership state %s (%.180s); account_unknown = %s",
             st.membership == MP_MEMBERSHIP_UNKNOWN ? "unknown" : "too old", why,
             r->allow ? "allow" : "deny");
}
