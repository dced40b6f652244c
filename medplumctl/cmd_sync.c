/*
 * medplumctl sync [--force] [--dry-run] [--json]
 *
 *   1. host credentials (mp_hostauth), one mp_http handle for the whole run;
 *   2. the directory (mp_directory): memberships, or Practitioners on 403;
 *      the client-credentials token is logged out right after;
 *   3. under the cache lock: old cache + directory + local files -> new
 *      cache (mp_idmap), refused when it would empty a non-empty cache
 *      (unless --force), written atomically;
 *   4. membership states (mp_state) and the sync status record.
 * A failed fetch or write leaves the previous cache untouched.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "mp_backoff.h"
#include "mp_cache.h"
#include "mp_directory.h"
#include "mp_hostauth.h"
#include "mp_http.h"
#include "mp_idmap.h"
#include "mp_state.h"
#include "sync_report.h"
#include "sync_status.h"

struct sync_opts {
    bool force, dry_run, json;
};

struct sync_run {
    struct ctl *c;
    struct sync_opts o;
    int64_t now;
    struct mp_directory dir;
    bool have_dir;
    struct mp_cache_data old;
    bool have_old;
    struct mp_idmap_result mapped;
    bool have_mapped;
    struct sync_status status;
    char message[512];
};

static void usage(FILE *out)
{
    fprintf(out, "usage: medplumctl sync [--force] [--dry-run] [--json] [--config PATH]\n\n"
                 "Fetches the project's directory from Medplum with the host's client\n"
                 "credentials and rewrites the account cache read by nss_medplum.\n\n"
                 "  --dry-run  fetch and map, print what would change, write nothing\n"
                 "  --force    write even when the result would remove every cached user\n"
                 "  --json     print the result as JSON\n\n"
                 "exit codes: 0 cache written (or nothing to do), 1 failed or refused, 2 usage\n");
}

static int parse(struct ctl *c, int argc, char **argv, struct sync_opts *o)
{
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'}, {"dry-run", no_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},  {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},  {NULL, 0, NULL, 0},
    };
    int opt;

    memset(o, 0, sizeof(*o));
    while ((opt = getopt_long(argc, argv, "fnjc:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            o->force = true;
            break;
        case 'n':
            o->dry_run = true;
            break;
        case 'j':
            o->json = true;
            break;
        case 'c':
            ctl_set_config(c, optarg);
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return CTL_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return CTL_USAGE;
    }
    return 0;
}

/* Prefixes the failure text; a Basic-auth refusal gets the rotation hint. */
static void explain(struct sync_run *r, const char *what, bool basic_refused)
{
    char why[sizeof(r->message)];

    memcpy(why, r->message, sizeof(why));
    snprintf(r->message, sizeof(r->message), "%s: %.300s%s", what, why,
             basic_refused ? " (with host_auth = basic a rotated secret stops working at once; "
                             "host_auth = client_credentials keeps accepting the retiring "
                             "secret during a rotation)"
                           : "");
}

/* Step 1+2: credentials and directory over one connection. */
static int fetch(struct sync_run *r)
{
    const struct mp_config *cfg = &r->c->cfg;
    const mp_logger *log = &r->c->log;
    struct mp_hostauth ha;
    struct mp_transport t;
    mp_status st;
    mp_http *http = mp_http_open(cfg, log);
    int ret = -1;

    memset(&ha, 0, sizeof(ha));
    if (http == NULL) {
        snprintf(r->message, sizeof(r->message), "cannot set up HTTP (out of memory?)");
        return -1;
    }
    t = mp_http_transport(http);
    st = mp_hostauth_begin(&ha, cfg, &t, log, r->message, sizeof(r->message));
    if (st != MP_OK) {
        explain(r, "host credentials", false);
        goto out;
    }
    st = mp_directory_fetch(&r->dir, cfg, &t, &ha, log, r->message, sizeof(r->message));
    if (st != MP_OK) {
        explain(r, "directory search failed",
                cfg->host_auth == MP_HOST_AUTH_BASIC && st == MP_DENIED);
        goto out;
    }
    r->have_dir = true;
    /* Medplum answered: logins need not skip the network any longer. */
    if (!r->o.dry_run)
        mp_backoff_success(cfg, log);
    ret = 0;
out:
    mp_hostauth_end(&ha, &t, log);
    mp_http_close(http);
    return ret;
}

static bool would_empty(const struct sync_run *r)
{
    return r->mapped.data.nusers == 0 && r->old.nusers > 0;
}

/* Step 3, with the lock held by the caller (not in a dry run). */
static int map_and_write(struct sync_run *r, const char **result)
{
    const struct mp_config *cfg = &r->c->cfg;
    const mp_logger *log = &r->c->log;
    struct mp_localdb local;
    int rc;

    if (mp_cache_load(cfg->cache_dir, &r->old, log) != 0) {
        snprintf(r->message, sizeof(r->message),
                 "the current cache cannot be read; fix or "
                 "remove %s/%s",
                 cfg->cache_dir, MP_CACHE_FILE);
        return -1;
    }
    r->have_old = true;
    if (mp_localdb_load(&local, ctl_passwd_file(), ctl_group_file(), log) != 0) {
        snprintf(r->message, sizeof(r->message), "the local passwd/group files cannot be read");
        return -1;
    }
    rc = mp_idmap_build(cfg, &r->dir, &r->old, &local, r->now, &r->mapped, log);
    mp_localdb_free(&local);
    if (rc != 0) {
        snprintf(r->message, sizeof(r->message), "mapping failed (out of memory)");
        return -1;
    }
    r->have_mapped = true;
    if (would_empty(r) && !r->o.force) {
        *result = "refused";
        snprintf(r->message, sizeof(r->message),
                 "the directory result has no users but the "
                 "cache has %zu; refusing to empty it (use --force)",
                 r->old.nusers);
        return -1;
    }
    if (r->mapped.data.nusers == 0 && r->old.nusers == 0 && r->old.nreservations == 0) {
        snprintf(r->message, sizeof(r->message), "no users in the directory; nothing to write");
        return 0;
    }
    if (r->o.dry_run)
        return 0;
    if (mp_cache_write(cfg->cache_dir, &r->mapped.data, log) != 0) {
        snprintf(r->message, sizeof(r->message),
                 "writing the cache failed; the previous "
                 "cache is kept");
        return -1;
    }
    return 0;
}

/* Step 4a: membership states learned from the ProjectMembership source. */
static int record_states(struct sync_run *r)
{
    int failures = 0;

    for (size_t i = 0; i < r->mapped.nstates; i++)
        if (mp_state_set_membership(r->c->cfg.cache_dir, r->mapped.states[i].name,
                                    r->mapped.states[i].state, r->now, &r->c->log) != 0)
            failures++;
    if (failures != 0)
        snprintf(r->message, sizeof(r->message),
                 "cache written, but %d membership state%s "
                 "could not be recorded",
                 failures, failures == 1 ? "" : "s");
    return failures ? -1 : 0;
}

/*
 * A refused write (the result would empty the cache) still carries explicit
 * "inactive" answers from Medplum: recording those fails closed, so the
 * account phase refuses the revoked member at once.  States inferred from an
 * absence ("absent") are not recorded from a result that was not trusted.
 */
static void record_explicit_revocations(struct sync_run *r)
{
    for (size_t i = 0; i < r->mapped.nstates; i++)
        if (r->mapped.states[i].state == MP_MEMBERSHIP_INACTIVE)
            mp_state_set_membership(r->c->cfg.cache_dir, r->mapped.states[i].name,
                                    MP_MEMBERSHIP_INACTIVE, r->now, &r->c->log);
}

/* Step 4b: keeps the last success when this run failed. */
static void record_status(struct sync_run *r, const char *result)
{
    struct sync_status *st = &r->status;
    const char *cache_dir = r->c->cfg.cache_dir;

    if (r->o.dry_run)
        return;
    if (sync_status_read(cache_dir, st, &r->c->log) < 0)
        memset(st, 0, sizeof(*st));
    st->attempt_time = r->now;
    snprintf(st->result, sizeof(st->result), "%s", result);
    snprintf(st->message, sizeof(st->message), "%.200s", r->message);
    if (r->have_dir) {
        snprintf(st->source, sizeof(st->source), "%s",
                 r->dir.source == MP_DIR_SOURCE_MEMBERSHIPS ? "memberships" : "practitioners");
        st->membership_known = r->dir.source == MP_DIR_SOURCE_MEMBERSHIPS;
    }
    if (strcmp(result, "ok") == 0 && r->have_mapped) {
        st->success_time = r->now;
        st->users = (long)r->mapped.data.nusers;
        st->skipped = (long)r->mapped.nskipped;
    }
    sync_status_write(cache_dir, st, &r->c->log);
}

static int run(struct sync_run *r)
{
    const char *cache_dir = r->c->cfg.cache_dir;
    const char *result = "failed";
    int lock = -1, ret = CTL_FAIL;

    if (!r->o.dry_run && mp_cache_prepare_dir(cache_dir, &r->c->log) != 0) {
        snprintf(r->message, sizeof(r->message), "cache directory %s is unusable", cache_dir);
        goto out;
    }
    if (fetch(r) != 0)
        goto out;
    /* The lock is taken only after the network part: logins that record
     * their entry must not wait for Medplum. */
    if (!r->o.dry_run && (lock = mp_cache_lock(cache_dir, &r->c->log)) < 0) {
        snprintf(r->message, sizeof(r->message), "cannot lock the cache");
        goto out;
    }
    if (map_and_write(r, &result) != 0) {
        if (strcmp(result, "refused") == 0 && r->have_mapped)
            record_explicit_revocations(r);
        goto out;
    }
    mp_cache_unlock(lock);
    lock = -1;
    result = "ok";
    ret = CTL_OK;
    if (!r->o.dry_run && record_states(r) != 0) {
        result = "failed";
        ret = CTL_FAIL;
    }
out:
    mp_cache_unlock(lock);
    record_status(r, result);
    sync_report_print(
        &(struct sync_report){result, r->message, r->o.dry_run, r->have_dir ? &r->dir : NULL,
                              r->have_old ? &r->old : NULL, r->have_mapped ? &r->mapped : NULL},
        r->o.json);
    return ret;
}

int cmd_sync(struct ctl *c, int argc, char **argv)
{
    struct sync_run r;
    int ret;

    memset(&r, 0, sizeof(r));
    r.c = c;
    ret = parse(c, argc, argv, &r.o);
    if (ret != 0)
        return ret < 0 ? CTL_OK : ret;
    if (ctl_load_config(c) != 0)
        return CTL_FAIL;
    r.now = (int64_t)time(NULL);
    ret = run(&r);
    if (r.have_mapped)
        mp_idmap_result_free(&r.mapped);
    if (r.have_old)
        mp_cache_data_free(&r.old);
    mp_directory_free(&r.dir);
    return ret;
}
