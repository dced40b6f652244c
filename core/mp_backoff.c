#include "mp_backoff.h"

#include <stdio.h>
#include <string.h>

#include "mp_crypto.h"

long mp_backoff_delay(unsigned failures, long base, long max)
{
    long delay = base > 0 ? base : 1;

    if (max < delay)
        max = delay;
    for (unsigned i = 1; i < failures && delay < max; i++)
        delay = delay > max / 2 ? max : delay * 2;
    return delay < max ? delay : max;
}

void mp_backoff_next(struct mp_backoff_state *st, long base, long max, int64_t now,
                     long retry_after, unsigned jitter_permille, const char *reason)
{
    long delay;

    if (st->failures == 0 || st->first_failure > now)
        st->first_failure = now;
    if (st->failures < 1000000)
        st->failures++;
    st->last_failure = now;
    delay = mp_backoff_delay(st->failures, base, max);
    if (jitter_permille > 1000)
        jitter_permille = 1000;
    delay -= (long)((long long)delay * jitter_permille / 4000);
    if (retry_after > delay)
        delay = retry_after < max ? retry_after : max;
    if (delay < 1)
        delay = 1;
    st->until = now + delay;
    snprintf(st->reason, sizeof(st->reason), "%s", reason ? reason : "");
}

bool mp_backoff_active(const struct mp_config *cfg, int64_t now, long *remaining,
                       const mp_logger *log)
{
    struct mp_backoff_state st;

    *remaining = 0;
    if (mp_state_get_backoff(cfg->cache_dir, &st, log) != 0 || st.failures == 0)
        return false;
    if (st.until <= now || st.until - now > cfg->offline_backoff_max)
        return false;
    *remaining = (long)(st.until - now);
    return true;
}

struct failure_ctx {
    const struct mp_config *cfg;
    int64_t now;
    long retry_after;
    const char *reason;
};

static void apply_failure(struct mp_backoff_state *st, void *ctx)
{
    const struct failure_ctx *c = ctx;
    uint16_t rnd = 0;

    if (mp_random_bytes(&rnd, sizeof(rnd)) != 0)
        rnd = 0;
    mp_backoff_next(st, c->cfg->offline_backoff, c->cfg->offline_backoff_max, c->now,
                    c->retry_after, (unsigned)(rnd % 1001), c->reason);
}

void mp_backoff_failure(const struct mp_config *cfg, int64_t now, long retry_after,
                        const char *reason, const mp_logger *log)
{
    struct failure_ctx c = {cfg, now, retry_after, reason};

    if (mp_state_update_backoff(cfg->cache_dir, apply_failure, &c, log) != 0)
        mp_log(log, LOG_WARNING,
               "cannot record the network failure; the next login will "
               "try the network again");
}

void mp_backoff_success(const struct mp_config *cfg, const mp_logger *log)
{
    struct mp_backoff_state st;

    /* Read first: a successful login must not cost a write and a lock. */
    if (mp_state_get_backoff(cfg->cache_dir, &st, log) == 0 && st.failures == 0)
        return;
    if (mp_state_clear_backoff(cfg->cache_dir, log) != 0)
        mp_log(log, LOG_WARNING, "cannot clear the network backoff");
}
