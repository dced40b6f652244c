/*
 * Test helper for the PAM suites: reads and writes mp_state the way
 * medplumctl sync and status do.
 *
 *   state_tool set-membership CACHE_DIR USER active|inactive|absent|unknown NOW
 *   state_tool get CACHE_DIR USER      key=value lines of struct mp_user_state
 *   state_tool backoff CACHE_DIR       key=value lines of struct mp_backoff_state
 *   state_tool cache-add CACHE_DIR NAME UID EMAIL PROFILE   an accounts.db entry
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_cache.h"
#include "mp_log.h"
#include "mp_state.h"

static const mp_logger log_stderr = {mp_log_stderr_emit, (void *)"state_tool", true};

static int parse_state(const char *s, enum mp_membership_state *out)
{
    for (int i = MP_MEMBERSHIP_UNKNOWN; i <= MP_MEMBERSHIP_ABSENT; i++)
        if (strcmp(s, mp_membership_state_name((enum mp_membership_state)i)) == 0) {
            *out = (enum mp_membership_state)i;
            return 0;
        }
    return -1;
}

static int get_user(const char *dir, const char *user)
{
    struct mp_user_state st;

    if (mp_state_get_user(dir, user, &st, &log_stderr) != 0)
        return 1;
    printf("membership=%s\nmembership_checked_at=%" PRId64 "\nlast_online_login=%" PRId64
           "\nmfa_user=%d\noffline_failures=%u\nhas_verifier=%d\nprofile=%s\n",
           mp_membership_state_name(st.membership), st.membership_checked_at, st.last_online_login,
           st.mfa_user, st.offline_failures, st.has_verifier, st.profile);
    return 0;
}

static int get_backoff(const char *dir)
{
    struct mp_backoff_state b;

    if (mp_state_get_backoff(dir, &b, &log_stderr) != 0)
        return 1;
    printf("failures=%u\nfirst_failure=%" PRId64 "\nlast_failure=%" PRId64 "\nuntil=%" PRId64
           "\nreason=%s\n",
           b.failures, b.first_failure, b.last_failure, b.until, b.reason);
    return 0;
}

static int cache_add(char **argv)
{
    struct mp_cache_user u = {0};
    char home[128];

    snprintf(home, sizeof(home), "/home/%s", argv[3]);
    u.name = argv[3];
    u.uid = u.gid = (uint32_t)strtoul(argv[4], NULL, 10);
    u.gecos = argv[3];
    u.home = home;
    u.shell = (char *)"/bin/sh";
    u.email = argv[5];
    u.profile = argv[6];
    if (mp_cache_prepare_dir(argv[2], &log_stderr) != 0)
        return 1;
    return mp_cache_upsert_user(argv[2], &u, &log_stderr) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    enum mp_membership_state st;

    if (argc == 6 && strcmp(argv[1], "set-membership") == 0 && parse_state(argv[4], &st) == 0)
        return mp_state_set_membership(argv[2], argv[3], st, strtoll(argv[5], NULL, 10),
                                       &log_stderr) == 0
                   ? 0
                   : 1;
    if (argc == 4 && strcmp(argv[1], "get") == 0)
        return get_user(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "backoff") == 0)
        return get_backoff(argv[2]);
    if (argc == 7 && strcmp(argv[1], "cache-add") == 0)
        return cache_add(argv);
    fprintf(stderr, "usage: state_tool set-membership DIR USER STATE NOW | get DIR USER | "
                    "backoff DIR\n");
    return 2;
}
