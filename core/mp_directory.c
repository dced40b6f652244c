/*
 * Fetching the directory (mp_directory.h): the search requests, paging,
 * the 403 fallback and the page-size retreat.  Parsing is in
 * mp_directory_parse.c.
 */
#include "mp_directory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_outcome.h"

#define FHIR_PREFIX "fhir/R4/"

static char *first_url(const struct mp_config *cfg, enum mp_dir_source source, int count)
{
    char *url = NULL;

    if (source == MP_DIR_SOURCE_MEMBERSHIPS) {
        if (asprintf(&url,
                     FHIR_PREFIX "ProjectMembership?project=Project/%s"
                                 "&profile-type=Practitioner&_include=ProjectMembership:profile"
                                 "&_sort=_lastUpdated&_count=%d",
                     cfg->project_id, count) < 0)
            url = NULL;
    } else if (asprintf(&url, FHIR_PREFIX "Practitioner?_sort=_lastUpdated&_count=%d", count) < 0) {
        url = NULL;
    }
    return url;
}

/*
 * A next link is used as written.  When Medplum's public URL differs from
 * base_url (a proxy in between), only the part before "fhir/R4/" is replaced:
 * credentials are never sent anywhere but base_url.
 */
static char *follow(const struct mp_config *cfg, const char *next, const mp_logger *log)
{
    size_t blen = strlen(cfg->base_url);
    const char *rest;
    char *url = NULL;

    if (strncmp(next, cfg->base_url, blen) == 0)
        return strdup(next);
    rest = strstr(next, "/" FHIR_PREFIX);
    if (rest == NULL || strstr(next, "://") == NULL)
        return NULL;
    mp_log(log, LOG_DEBUG, "directory: next link outside base_url, rebased onto base_url");
    if (asprintf(&url, "%s%s", cfg->base_url, rest + 1) < 0)
        url = NULL;
    return url;
}

enum page_result { PAGE_OK, PAGE_FORBIDDEN, PAGE_TOO_LARGE, PAGE_FAILED };

static enum page_result get_page(const struct mp_transport *t, const struct mp_hostauth *ha,
                                 const char *url, struct mp_http_response *resp, mp_status *st,
                                 char *reason, size_t reason_len)
{
    struct mp_http_request req = {0};

    req.method = "GET";
    req.path = url;
    mp_hostauth_apply(ha, &req);
    t->perform(t->ctx, &req, resp);
    if (resp->net == MP_NET_TOO_LARGE)
        return PAGE_TOO_LARGE;
    *st = mp_outcome_classify(resp, reason, reason_len);
    if (*st == MP_OK)
        return PAGE_OK;
    if (resp->net == MP_NET_OK && resp->status == 403)
        return PAGE_FORBIDDEN;
    return PAGE_FAILED;
}

struct walk {
    const struct mp_config *cfg;
    const struct mp_transport *t;
    const struct mp_hostauth *ha;
    const mp_logger *log;
    char *reason;
    size_t reason_len;
};

/* Walks every page of one source.  Returns the page result that ended it. */
static enum page_result walk_pages(struct walk *w, struct mp_directory *dir, int count,
                                   mp_status *st)
{
    char *url = first_url(w->cfg, dir->source, count);
    char *next = NULL;
    enum page_result pr = PAGE_FAILED;

    *st = MP_ERROR;
    while (url != NULL) {
        struct mp_http_response resp;
        size_t added = 0;

        if (dir->pages >= MP_DIR_MAX_PAGES) {
            snprintf(w->reason, w->reason_len, "more than %d pages: giving up", MP_DIR_MAX_PAGES);
            goto out;
        }
        pr = get_page(w->t, w->ha, url, &resp, st, w->reason, w->reason_len);
        if (pr == PAGE_OK && mp_directory_add_page(dir, w->cfg, resp.body, resp.body_len, &next,
                                                   &added, w->log, w->reason, w->reason_len) != 0) {
            *st = MP_ERROR;
            pr = PAGE_FAILED;
        }
        mp_http_response_free(&resp);
        if (pr != PAGE_OK)
            goto out;
        dir->pages++;
        mp_log(w->log, LOG_DEBUG, "directory: page %zu: %zu new entries", dir->pages, added);
        free(url);
        url = NULL;
        if (next == NULL)
            break;
        if (added == 0) {
            /* A next link after a page of repeats would loop forever. */
            snprintf(w->reason, w->reason_len, "paging makes no progress at page %zu", dir->pages);
            *st = MP_ERROR;
            pr = PAGE_FAILED;
            goto out;
        }
        url = follow(w->cfg, next, w->log);
        if (url == NULL) {
            snprintf(w->reason, w->reason_len, "next link is not a FHIR URL: %.100s", next);
            *st = MP_ERROR;
            pr = PAGE_FAILED;
            goto out;
        }
        free(next);
        next = NULL;
    }
    *st = MP_OK;
    pr = PAGE_OK;
out:
    free(url);
    free(next);
    return pr;
}

/* One source from the start, with smaller pages while a page is too large. */
static enum page_result fetch_source(struct walk *w, struct mp_directory *dir,
                                     enum mp_dir_source source, mp_status *st)
{
    enum page_result pr = PAGE_FAILED;

    for (int count = MP_DIR_PAGE_SIZE; count >= MP_DIR_PAGE_MIN; count /= 2) {
        char keep[sizeof(dir->fallback_reason)];
        memcpy(keep, dir->fallback_reason, sizeof(keep));
        mp_directory_free(dir);
        dir->source = source;
        memcpy(dir->fallback_reason, keep, sizeof(keep));
        pr = walk_pages(w, dir, count, st);
        if (pr != PAGE_TOO_LARGE)
            return pr;
        mp_log(w->log, LOG_WARNING,
               "directory: a page of %d entries is over %d bytes; "
               "retrying with smaller pages",
               count, MP_HTTP_MAX_BODY);
    }
    snprintf(w->reason, w->reason_len, "search pages stay over %d bytes", MP_HTTP_MAX_BODY);
    *st = MP_ERROR;
    return PAGE_FAILED;
}

mp_status mp_directory_fetch(struct mp_directory *dir, const struct mp_config *cfg,
                             const struct mp_transport *transport, const struct mp_hostauth *ha,
                             const mp_logger *log, char *reason, size_t reason_len)
{
    struct walk w = {cfg, transport, ha, log, reason, reason_len};
    mp_status st = MP_ERROR;
    enum page_result pr;

    memset(dir, 0, sizeof(*dir));
    pr = fetch_source(&w, dir, MP_DIR_SOURCE_MEMBERSHIPS, &st);
    if (pr == PAGE_FORBIDDEN) {
        /* Not an admin client (contract §9.2): read Practitioners only. */
        snprintf(dir->fallback_reason, sizeof(dir->fallback_reason),
                 "ProjectMembership search refused (%.120s)", reason);
        mp_log(log, LOG_INFO,
               "directory: %s; using the Practitioner search, membership state "
               "unknown",
               dir->fallback_reason);
        pr = fetch_source(&w, dir, MP_DIR_SOURCE_PRACTITIONERS, &st);
    }
    if (pr == PAGE_OK && mp_directory_finish(dir) != 0) {
        snprintf(reason, reason_len, "out of memory");
        st = MP_ERROR;
        pr = PAGE_FAILED;
    }
    if (pr != PAGE_OK) {
        if (st == MP_OK)
            st = MP_ERROR;
        mp_directory_free(dir);
        return st;
    }
    reason[0] = '\0';
    return MP_OK;
}
