/*
 * medplumctl check-config [--sync] [--json] [--config PATH]
 *
 * Reports every problem, not just the first: the parser's (with line
 * numbers), file ownership and modes of the config, the secret file and the
 * cache directory, and then warnings about choices that work but hurt
 * (Basic host auth, uid ranges that overlap other allocators).  Exit 1 when
 * there is any problem; warnings alone exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "mp_cache.h"
#include "mp_secret.h"

#define MAX_NOTES 128

struct notes {
    char *text[MAX_NOTES];
    bool problem[MAX_NOTES];
    size_t n;
    size_t problems, warnings;
};

static void note_add(struct notes *ns, bool problem, const char *text)
{
    if (ns->n < MAX_NOTES && (ns->text[ns->n] = strdup(text)) != NULL)
        ns->problem[ns->n++] = problem;
    if (problem)
        ns->problems++;
    else
        ns->warnings++;
}

static void note(struct notes *ns, bool problem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note(struct notes *ns, bool problem, const char *fmt, ...)
{
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    note_add(ns, problem, text);
}

/* The config parser and file checks report through this logger. */
static void collect(void *ctx, int priority, const char *message)
{
    if (priority <= LOG_WARNING)
        note_add(ctx, priority <= LOG_ERR, message);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: medplumctl check-config [--sync] [--json] [--config PATH]\n\n"
                 "Checks the configuration file (every problem, with line numbers), the\n"
                 "ownership and modes of it, of the host secret file and of the cache\n"
                 "directory, and warns about risky choices.\n\n"
                 "  --sync  also require what `medplumctl sync` needs (host credentials)\n"
                 "  --json  print {\"problems\": [...], \"warnings\": [...]}\n\n"
                 "exit codes: 0 no problems (warnings allowed), 1 problems found, 2 usage\n");
}

static int check_dir(struct notes *ns, const char *dir, bool private_dir)
{
    struct stat st;

    if (lstat(dir, &st) != 0) {
        if (errno == ENOENT && !private_dir)
            note(ns, false, "%s: does not exist yet (medplumctl sync creates it)", dir);
        else if (errno != ENOENT)
            note(ns, true, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        note(ns, true, "%s: not a directory%s", dir, S_ISLNK(st.st_mode) ? " (a symlink)" : "");
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid())
        note(ns, true, "%s: owned by uid %u, must be owned by root", dir, (unsigned)st.st_uid);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        note(ns, true, "%s: writable by group or others (mode %04o)", dir,
             (unsigned)(st.st_mode & 07777));
    if (private_dir && (st.st_mode & (S_IRWXG | S_IRWXO)))
        note(ns, true, "%s: accessible by group or others (mode %04o, must be 0700)", dir,
             (unsigned)(st.st_mode & 07777));
    return 0;
}

static void check_cache(struct notes *ns, struct ctl *c)
{
    char priv[4096];
    struct mp_cache_data d;
    size_t before = ns->problems;

    if (check_dir(ns, c->cfg.cache_dir, false) != 0)
        return;
    snprintf(priv, sizeof(priv), "%s/%s", c->cfg.cache_dir, MP_CACHE_PRIVATE);
    check_dir(ns, priv, true);
    /* accounts.db itself (format, checksum, owner), unless the directory
     * already failed: the cache code would only repeat that. */
    if (ns->problems == before && mp_cache_load(c->cfg.cache_dir, &d, &c->log) == 0)
        mp_cache_data_free(&d);
}

static void check_secret(struct notes *ns, struct ctl *c, bool for_sync)
{
    const struct mp_config *cfg = &c->cfg;
    char *secret = NULL;
    size_t before;

    if (cfg->host_client_id == NULL) {
        note(ns, for_sync, "%s: host_client_id is not set: medplumctl sync cannot run",
             c->config_path);
        return;
    }
    if (cfg->host_client_secret == NULL && cfg->host_client_secret_file == NULL) {
        note(ns, true,
             "%s: host_client_id is set but neither host_client_secret_file nor "
             "host_client_secret",
             c->config_path);
        return;
    }
    before = ns->problems;
    if (mp_config_host_secret(cfg, &secret, &c->log) != 0 && ns->problems == before)
        note(ns, true, "%s: the host client secret cannot be used",
             cfg->host_client_secret_file ? cfg->host_client_secret_file : c->config_path);
    mp_secret_free(secret);
    if (cfg->host_client_secret != NULL)
        note(ns, false, "%s: host_client_secret is inline; prefer host_client_secret_file",
             c->config_path);
    if (cfg->host_auth == MP_HOST_AUTH_BASIC)
        note(ns, false,
             "%s: host_auth = basic stops working the moment the client secret is "
             "rotated; client_credentials keeps accepting the retiring secret",
             c->config_path);
}

static void check_file(struct notes *ns, const char *what, const char *path, int mode)
{
    if (path != NULL && access(path, mode) != 0)
        note(ns, true, "%s %s: %s", what, path, strerror(errno));
}

/* Ranges other allocators use (systemd's UIDS-GIDS.md, Debian login.defs). */
static void check_ranges(struct notes *ns, const struct mp_config *cfg)
{
    static const struct {
        unsigned long lo, hi;
        const char *who;
    } taken[] = {
        {1000, 59999, "regular local users (login.defs UID_MIN..UID_MAX)"},
        {60001, 60513, "systemd-homed users"},
        {61184, 65519, "systemd DynamicUser="},
        {65534, 65535, "nobody and the 16-bit -1"},
        {524288, 1879048191, "systemd-nspawn container uid ranges"},
    };

    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
        if (cfg->uid_min <= taken[i].hi && cfg->uid_max >= taken[i].lo)
            note(ns, false, "uid range %lu-%lu overlaps %lu-%lu used by %s", cfg->uid_min,
                 cfg->uid_max, taken[i].lo, taken[i].hi, taken[i].who);
}

/* /etc/subuid and /etc/subgid: "name:start:count" lines of local users. */
static void check_subids(struct notes *ns, const struct mp_config *cfg, const char *path)
{
    FILE *f = fopen(path, "re");
    char line[512];
    unsigned lineno = 0;

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long start, count;
        char *colon = strchr(line, ':');
        lineno++;
        if (colon == NULL || sscanf(colon + 1, "%lu:%lu", &start, &count) != 2 || count == 0)
            continue;
        if (cfg->uid_min <= start + count - 1 && cfg->uid_max >= start)
            note(ns, false,
                 "%s:%u: subordinate ids %lu-%lu overlap uid_min..uid_max (%lu-%lu): "
                 "that user's containers could own Medplum users' files",
                 path, lineno, start, start + count - 1, cfg->uid_min, cfg->uid_max);
    }
    fclose(f);
}

static void print(const struct notes *ns, const char *path, bool json)
{
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *p = cJSON_AddArrayToObject(root, "problems");
        cJSON *w = cJSON_AddArrayToObject(root, "warnings");
        for (size_t i = 0; p && w && i < ns->n; i++)
            cJSON_AddItemToArray(ns->problem[i] ? p : w, cJSON_CreateString(ns->text[i]));
        cJSON_AddStringToObject(root, "config", path);
        ctl_print_json(root);
        return;
    }
    for (size_t i = 0; i < ns->n; i++)
        printf("%s: %s\n", ns->problem[i] ? "problem" : "warning", ns->text[i]);
    printf("%s: %zu problem%s, %zu warning%s\n", path, ns->problems, ns->problems == 1 ? "" : "s",
           ns->warnings, ns->warnings == 1 ? "" : "s");
}

int cmd_check_config(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"sync", no_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct notes ns;
    bool json = false, for_sync = false;
    int opt;

    memset(&ns, 0, sizeof(ns));
    while ((opt = getopt_long(argc, argv, "sjc:h", opts, NULL)) != -1) {
        if (opt == 's')
            for_sync = true;
        else if (opt == 'j')
            json = true;
        else if (opt == 'c')
            ctl_set_config(c, optarg);
        else if (opt == 'h')
            return usage(stdout), CTL_OK;
        else
            return usage(stderr), CTL_USAGE;
    }
    if (optind != argc)
        return usage(stderr), CTL_USAGE;
    if (ctl_check_privileges(c) != 0 || mp_config_init(&c->cfg) != 0)
        return CTL_FAIL;
    c->cfg_loaded = true;
    c->log = (mp_logger){collect, &ns, false};
    /* The rest runs even after parse errors: every value that did parse is
     * checked too, so one run shows everything to fix. */
    mp_config_load(&c->cfg, c->config_path, &c->log);
    /* A file that could not be read at all (missing, insecure, a symlink)
     * leaves only defaults: checking those would report things the file
     * may well set. */
    if (c->cfg.parsed) {
        check_secret(&ns, c, for_sync);
        check_file(&ns, "ca_file", c->cfg.ca_file, R_OK);
        check_file(&ns, "shell", c->cfg.shell, X_OK);
        check_cache(&ns, c);
        check_ranges(&ns, &c->cfg);
        check_subids(&ns, &c->cfg, "/etc/subuid");
        check_subids(&ns, &c->cfg, "/etc/subgid");
    }
    print(&ns, c->config_path, json);
    for (size_t i = 0; i < ns.n; i++)
        free(ns.text[i]);
    return ns.problems ? CTL_FAIL : CTL_OK;
}
