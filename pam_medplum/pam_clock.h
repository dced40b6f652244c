/*
 * The module's clock.  Every time-dependent decision (membership age,
 * offline TTL, backoff) takes `now` from here and passes it down; the core
 * never reads the clock itself.
 *
 * Test builds only (compiled with -DMP_TESTING into build/testing/, never
 * installed): MP_TEST_CLOCK_OFFSET=<seconds> in the environment, read with
 * secure_getenv, shifts the clock so the suites can age state by days
 * without sleeping.  The production object does not contain this code at
 * all (tests/pam check that the installed module has no such string), so
 * no environment, config file or caller can move a production clock.
 */
#ifndef PAM_MEDPLUM_CLOCK_H
#define PAM_MEDPLUM_CLOCK_H

#include <stdint.h>

int64_t pam_medplum_now(void);

#endif
