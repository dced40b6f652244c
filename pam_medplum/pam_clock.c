#include "pam_clock.h"

#include <time.h>

#ifdef MP_TESTING
#include <errno.h>
#include <stdlib.h>

/* Test builds only: see pam_clock.h. */
static int64_t test_offset(void)
{
    const char *v = secure_getenv("MP_TEST_CLOCK_OFFSET");
    char *end = NULL;
    long long n;

    if (v == NULL || v[0] == '\0')
        return 0;
    errno = 0;
    n = strtoll(v, &end, 10);
    return (errno == 0 && *end == '\0') ? n : 0;
}
#else
static int64_t test_offset(void)
{
    return 0;
}
#endif

int64_t pam_medplum_now(void)
{
    return (int64_t)time(NULL) + test_offset();
}
