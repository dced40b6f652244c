/*
 * Network backoff, so an outage costs one timeout and not one per login.
 *
 * When a request fails for a reason that allows offline login (the
 * "could not ask" class of mp_status.h), the host records it; for the next
 * offline_backoff seconds, doubling per further failure up to
 * offline_backoff_max, logins go straight to the offline path and account
 * checks use only the known state, without touching the network.  The delay
 * is shortened by a random 0-25 % so that the workstations of a site do not
 * all come back at the same second.  Any successful exchange clears it.
 *
 * State lives in mp_state (private/backoff); medplumctl status reads it with
 * mp_state_get_backoff.
 */
#ifndef MP_BACKOFF_H
#define MP_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "mp_config.h"
#include "mp_log.h"
#include "mp_state.h"

/*
 * True when the network must be skipped now; *remaining gets the seconds
 * left.  A deadline further away than offline_backoff_max (a clock that was
 * set back) is ignored rather than trusted.
 */
bool mp_backoff_active(const struct mp_config *cfg, int64_t now, long *remaining,
                       const mp_logger *log);

/* Records one more network failure.  retry_after (a 429's hint, 0 if none)
 * lengthens the delay, capped at offline_backoff_max. */
void mp_backoff_failure(const struct mp_config *cfg, int64_t now, long retry_after,
                        const char *reason, const mp_logger *log);

/* A request got through: clears the backoff (writes only if one was set). */
void mp_backoff_success(const struct mp_config *cfg, const mp_logger *log);

/* The pure policy, for tests: applies one failure to st.  jitter_permille
 * (0-1000) picks how much of the 25 % reduction is applied. */
void mp_backoff_next(struct mp_backoff_state *st, long base, long max, int64_t now,
                     long retry_after, unsigned jitter_permille, const char *reason);

/* The delay for the n-th failure in a row before jitter (n >= 1). */
long mp_backoff_delay(unsigned failures, long base, long max);

#endif
