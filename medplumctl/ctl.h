/*
 * Shared pieces of the medplumctl commands: the run context, config loading
 * with the root rule, output helpers.  Exit codes of every command:
 *   0 ok, 1 a problem was found or the operation failed, 2 usage error.
 */
#ifndef CTL_H
#define CTL_H

#include <stdbool.h>
#include <stdio.h>

#include <cJSON.h>

#include "mp_config.h"
#include "mp_log.h"

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

struct ctl {
    const char *config_path; /* --config, else MP_DEFAULT_CONFIG */
    bool config_given;       /* --config was on the command line */
    bool debug;
    struct mp_config cfg;
    bool cfg_loaded;
    mp_logger log;
};

struct ctl_command {
    const char *name;
    const char *summary;
    int (*run)(struct ctl *c, int argc, char **argv);
};

/* The commands (one file each). */
int cmd_sync(struct ctl *c, int argc, char **argv);
int cmd_status(struct ctl *c, int argc, char **argv);
int cmd_check_config(struct ctl *c, int argc, char **argv);
int cmd_test_login(struct ctl *c, int argc, char **argv);
int cmd_cache(struct ctl *c, int argc, char **argv);

/*
 * medplumctl is root's tool: the config and cache are root's.  A non-root
 * caller is refused unless --config names a file it owns (test runs).
 * Returns 0 when allowed, else prints why and returns CTL_FAIL.
 */
int ctl_check_privileges(const struct ctl *c);

/* Privilege check + mp_config_load; problems go to stderr.  Returns 0 or
 * CTL_FAIL. */
int ctl_load_config(struct ctl *c);

/* A --config PATH seen by a command's own option parser. */
void ctl_set_config(struct ctl *c, const char *path);

/*
 * Files the sync compares names against.  Test-only overrides (documented
 * as such): MEDPLUM_PASSWD_FILE and MEDPLUM_GROUP_FILE.  Production runs
 * never set them; they are ignored unless the caller is allowed to run
 * medplumctl anyway.
 */
const char *ctl_passwd_file(void);
const char *ctl_group_file(void);

/* Prints a JSON tree to stdout (formatted), then frees it. */
void ctl_print_json(cJSON *root);

/* "2026-12-03 14:00:00 UTC" (or "never" for 0). */
void ctl_format_time(long long t, char *out, size_t outlen);

#endif
