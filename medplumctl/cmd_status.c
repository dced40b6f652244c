/*
 * medplumctl status [--json]
 *
 * Configuration summary (never a secret), server reachability with TLS
 * details, whether the host credentials work and which directory source they
 * give, the last sync, the cache and the network backoff.  Exit 1 when any
 * of them shows a problem.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "mp_cache.h"
#include "mp_hostauth.h"
#include "mp_http.h"
#include "mp_outcome.h"
#include "mp_state.h"
#include "status_probe.h"
#include "sync_status.h"

struct status {
    struct status_probe probe;
    bool creds_checked, creds_ok;
    char creds_error[256];
    const char *directory; /* "memberships", "practitioners", "none", or NULL */
    int sync_read;
    struct sync_status sync;
    bool cache_ok;
    size_t users, groups, reservations;
    long long generated_at;
    bool backoff_ok;
    struct mp_backoff_state backoff;
    int problems;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: medplumctl status [--json] [--config PATH]\n\n"
                 "Shows the configuration (no secrets), whether Medplum answers (with TLS\n"
                 "details), whether the host credentials work and which directory source\n"
                 "they allow, the last sync, the cache and the network backoff.\n\n"
                 "exit codes: 0 all well, 1 a problem was found, 2 usage\n");
}

static const char *secret_source(const struct mp_config *cfg)
{
    if (cfg->host_client_secret_file != NULL)
        return cfg->host_client_secret_file;
    return cfg->host_client_secret != NULL ? "(inline in the config)" : "(not set)";
}

/* 200: readable; 403: not allowed; anything else: -1. */
static int can_read(const struct mp_transport *t, const struct mp_hostauth *ha, const char *path)
{
    struct mp_http_request req = {0};
    struct mp_http_response resp;
    int ret;

    req.method = "GET";
    req.path = path;
    mp_hostauth_apply(ha, &req);
    t->perform(t->ctx, &req, &resp);
    ret = resp.net != MP_NET_OK ? -1 : resp.status == 200 ? 1 : resp.status == 403 ? 0 : -1;
    mp_http_response_free(&resp);
    return ret;
}

static void check_credentials(struct ctl *c, struct status *s)
{
    mp_http *http;
    struct mp_transport t;
    struct mp_hostauth ha;
    char path[160];
    int members, pracs;

    if (c->cfg.host_client_id == NULL)
        return;
    s->creds_checked = true;
    if ((http = mp_http_open(&c->cfg, &c->log)) == NULL)
        return;
    t = mp_http_transport(http);
    if (mp_hostauth_begin(&ha, &c->cfg, &t, &c->log, s->creds_error, sizeof(s->creds_error)) ==
        MP_OK) {
        snprintf(path, sizeof(path), "fhir/R4/ProjectMembership?project=Project/%s&_count=1",
                 c->cfg.project_id);
        members = can_read(&t, &ha, path);
        pracs = members == 1 ? 1 : can_read(&t, &ha, "fhir/R4/Practitioner?_count=1");
        s->creds_ok = members >= 0 && pracs >= 0;
        if (!s->creds_ok)
            snprintf(s->creds_error, sizeof(s->creds_error),
                     "credentials refused by the FHIR "
                     "API (a rotated secret with Basic "
                     "auth?)");
        s->directory = members == 1 ? "memberships" : pracs == 1 ? "practitioners" : "none";
    }
    mp_hostauth_end(&ha, &t, &c->log);
    mp_http_close(http);
}

static void gather(struct ctl *c, struct status *s)
{
    struct mp_cache_data d;
    time_t now = time(NULL);

    status_probe_run(&c->cfg, &s->probe);
    check_credentials(c, s);
    s->sync_read = sync_status_read(c->cfg.cache_dir, &s->sync, &c->log);
    if ((s->cache_ok = mp_cache_load(c->cfg.cache_dir, &d, &c->log) == 0)) {
        s->users = d.nusers;
        s->groups = d.ngroups;
        s->reservations = d.nreservations;
        s->generated_at = d.generated_at;
        mp_cache_data_free(&d);
    }
    s->backoff_ok = mp_state_get_backoff(c->cfg.cache_dir, &s->backoff, &c->log) == 0;
    s->problems = !(s->probe.reachable && s->probe.http_status == 200) +
                  (s->creds_checked && !s->creds_ok) +
                  (s->directory && !strcmp(s->directory, "none")) +
                  (s->sync_read == 0 && strcmp(s->sync.result, "ok") != 0) + !s->cache_ok +
                  !s->backoff_ok + (s->backoff_ok && s->backoff.until > (int64_t)now);
}

static void print_text(const struct ctl *c, const struct status *s)
{
    const struct mp_config *cfg = &c->cfg;
    const struct status_probe *p = &s->probe;
    char t1[32], t2[32];

    printf("config           %s\n", c->config_path);
    printf("  base_url       %s\n  project_id     %s\n", cfg->base_url, cfg->project_id);
    printf("  client_id      %s\n", cfg->client_id ? cfg->client_id : "(server default)");
    printf("  host client    %s, %s, secret from %s\n",
           cfg->host_client_id ? cfg->host_client_id : "(not set)",
           cfg->host_auth == MP_HOST_AUTH_BASIC ? "basic" : "client_credentials",
           secret_source(cfg));
    printf("  mapping        username %s, uid %s in %lu-%lu, primary group %s%s%s\n",
           cfg->username_source, cfg->uid_source, cfg->uid_min, cfg->uid_max, cfg->primary_group,
           cfg->admin_group ? ", admin group " : "", cfg->admin_group ? cfg->admin_group : "");
    printf("  cache_dir      %s\n", cfg->cache_dir);
    if (p->reachable)
        printf("server           HTTP %ld from %s%s (%s, %.0f ms%s%s)\n", p->http_status, p->path,
               p->http_status == 200 ? "" : " (unexpected)", p->ip, p->total_ms,
               p->version[0] ? ", version " : "", p->version);
    else if (p->tls_failed)
        printf("server           CERTIFICATE NOT ACCEPTED: %s (check ca_file: %s)\n", p->error,
               cfg->ca_file ? cfg->ca_file : "unset, the system trust store is used");
    else
        printf("server           UNREACHABLE: %s\n", p->error);
    if (p->reachable && p->tls)
        printf("  TLS            verified; subject %s; issuer %s; expires %s; handshake %.0f ms\n",
               p->subject, p->issuer, p->expires, p->tls_ms - p->connect_ms);
    if (!s->creds_checked)
        printf("host credentials not configured (sync cannot run)\n");
    else if (!s->creds_ok)
        printf("host credentials FAILED: %s\n", s->creds_error);
    else
        printf("host credentials ok; directory source: %s\n",
               strcmp(s->directory, "memberships") == 0
                   ? "ProjectMembership (admin client, membership state known)"
                   : "Practitioner only (read-only client, membership state unknown)");
    if (s->sync_read == 0) {
        ctl_format_time(s->sync.attempt_time, t1, sizeof(t1));
        ctl_format_time(s->sync.success_time, t2, sizeof(t2));
        printf("last sync        %s: %s%s%s; last success %s (%ld users)\n", t1, s->sync.result,
               s->sync.message[0] ? ": " : "", s->sync.message, t2, s->sync.users);
    } else {
        printf("last sync        never%s\n", s->sync_read < 0 ? " (status record unreadable)" : "");
    }
    ctl_format_time(s->generated_at, t1, sizeof(t1));
    if (s->cache_ok)
        printf("cache            %zu users, %zu groups, %zu reserved uids, written %s\n", s->users,
               s->groups, s->reservations, t1);
    else
        printf("cache            UNREADABLE (see the error above)\n");
    if (s->backoff_ok && s->backoff.failures > 0) {
        ctl_format_time(s->backoff.until, t1, sizeof(t1));
        printf("network backoff  %u failures in a row, no network before %s: %s\n",
               s->backoff.failures, t1, s->backoff.reason);
    } else {
        printf("network backoff  %s\n", s->backoff_ok ? "none (online)" : "state unreadable");
    }
    printf("%d problem%s\n", s->problems, s->problems == 1 ? "" : "s");
}

static cJSON *json_server(const struct status_probe *p)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddBoolToObject(o, "reachable", p->reachable);
    cJSON_AddBoolToObject(o, "certificate_rejected", p->tls_failed);
    cJSON_AddNumberToObject(o, "http_status", p->http_status);
    cJSON_AddStringToObject(o, "path", p->path);
    cJSON_AddStringToObject(o, "error", p->error);
    cJSON_AddStringToObject(o, "ip", p->ip);
    cJSON_AddNumberToObject(o, "total_ms", p->total_ms);
    cJSON_AddStringToObject(o, "version", p->version);
    cJSON_AddBoolToObject(o, "tls", p->tls);
    cJSON_AddStringToObject(o, "tls_subject", p->subject);
    cJSON_AddStringToObject(o, "tls_issuer", p->issuer);
    cJSON_AddStringToObject(o, "tls_expires", p->expires);
    return o;
}

static void print_json(const struct ctl *c, const struct status *s)
{
    const struct mp_config *cfg = &c->cfg;
    cJSON *root = cJSON_CreateObject(), *o;

    o = cJSON_AddObjectToObject(root, "config");
    cJSON_AddStringToObject(o, "path", c->config_path);
    cJSON_AddStringToObject(o, "base_url", cfg->base_url);
    cJSON_AddStringToObject(o, "project_id", cfg->project_id);
    cJSON_AddStringToObject(o, "host_client_id", cfg->host_client_id ? cfg->host_client_id : "");
    cJSON_AddStringToObject(o, "host_auth",
                            cfg->host_auth == MP_HOST_AUTH_BASIC ? "basic" : "client_credentials");
    cJSON_AddStringToObject(o, "host_secret_from", secret_source(cfg));
    cJSON_AddStringToObject(o, "cache_dir", cfg->cache_dir);
    cJSON_AddItemToObject(root, "server", json_server(&s->probe));
    o = cJSON_AddObjectToObject(root, "host_credentials");
    cJSON_AddBoolToObject(o, "configured", s->creds_checked);
    cJSON_AddBoolToObject(o, "ok", s->creds_ok);
    cJSON_AddStringToObject(o, "error", s->creds_error);
    cJSON_AddStringToObject(o, "directory_source", s->directory ? s->directory : "");
    o = cJSON_AddObjectToObject(root, "last_sync");
    cJSON_AddNumberToObject(o, "attempt_time", (double)s->sync.attempt_time);
    cJSON_AddStringToObject(o, "result", s->sync_read == 0 ? s->sync.result : "never");
    cJSON_AddStringToObject(o, "message", s->sync.message);
    cJSON_AddNumberToObject(o, "success_time", (double)s->sync.success_time);
    cJSON_AddStringToObject(o, "source", s->sync.source);
    cJSON_AddBoolToObject(o, "membership_state_known", s->sync.membership_known);
    o = cJSON_AddObjectToObject(root, "cache");
    cJSON_AddBoolToObject(o, "readable", s->cache_ok);
    cJSON_AddNumberToObject(o, "users", (double)s->users);
    cJSON_AddNumberToObject(o, "groups", (double)s->groups);
    cJSON_AddNumberToObject(o, "reserved_uids", (double)s->reservations);
    cJSON_AddNumberToObject(o, "generated_at", (double)s->generated_at);
    o = cJSON_AddObjectToObject(root, "backoff");
    cJSON_AddNumberToObject(o, "failures", s->backoff.failures);
    cJSON_AddNumberToObject(o, "until", (double)s->backoff.until);
    cJSON_AddStringToObject(o, "reason", s->backoff.reason);
    cJSON_AddNumberToObject(root, "problems", s->problems);
    ctl_print_json(root);
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct status s;
    bool json = false;
    int opt;

    while ((opt = getopt_long(argc, argv, "jc:h", opts, NULL)) != -1) {
        if (opt == 'j')
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
    if (ctl_load_config(c) != 0)
        return CTL_FAIL;
    memset(&s, 0, sizeof(s));
    gather(c, &s);
    if (json)
        print_json(c, &s);
    else
        print_text(c, &s);
    return s.problems ? CTL_FAIL : CTL_OK;
}
