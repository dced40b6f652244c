#include "mp_http.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>

#include "mp_secret.h"

struct mp_http {
    CURL *curl;
    const struct mp_config *cfg;
    const mp_logger *log;
    int64_t budget_ms; /* network time left for this transaction */
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct body_buffer {
    char *data;
    size_t len;
    size_t cap;
    int too_large;
};

/*
 * libcurl (OpenSSL build) reads SSLKEYLOGFILE with plain getenv when it
 * initialises and appends TLS secrets to that file.  In a setuid or setgid
 * program (su, sudo, passwd) the environment is the caller's: root would
 * create and write a file of the caller's choosing.  Such a process must
 * not reach libcurl at all; changing the application's environment behind
 * its back is no better, so the login fails closed with the reason logged.
 */
static bool environment_is_safe(const mp_logger *log)
{
    if (getauxval(AT_SECURE) != 0 && getenv("SSLKEYLOGFILE") != NULL) {
        mp_log(log, LOG_ERR,
               "SSLKEYLOGFILE is set in a setuid/setgid program: refusing to "
               "use the network (libcurl would let the caller choose a file "
               "for root to write)");
        return false;
    }
    return true;
}

mp_http *mp_http_open(const struct mp_config *cfg, const mp_logger *log)
{
    mp_http *http;

    if (!environment_is_safe(log))
        return NULL;
    http = calloc(1, sizeof(*http));
    if (http == NULL)
        return NULL;
    http->curl = curl_easy_init();
    if (http->curl == NULL) {
        free(http);
        return NULL;
    }
    http->cfg = cfg;
    http->log = log;
    /*
     * `timeout` bounds each request; the whole transaction (a login is 3-5
     * requests) gets twice that in network time, so a server that answers
     * every request just under the timeout still cannot hold a login past
     * sshd's LoginGraceTime.  Time spent waiting for the user (the MFA
     * prompt) is not counted: only time inside mp_http_perform is.
     */
    http->budget_ms = (int64_t)cfg->timeout * 2000;
    return http;
}

void mp_http_close(mp_http *http)
{
    if (http == NULL)
        return;
    curl_easy_cleanup(http->curl);
    free(http);
}

static int transport_perform(void *ctx, const struct mp_http_request *req,
                             struct mp_http_response *resp)
{
    return mp_http_perform(ctx, req, resp);
}

struct mp_transport mp_http_transport(mp_http *http)
{
    struct mp_transport t = {transport_perform, http};
    return t;
}

/* Grows by doubling; wipes the old block because it may hold a token. */
static size_t write_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body_buffer *b = userdata;
    size_t n = size * nmemb;

    if (n > MP_HTTP_MAX_BODY || b->len + n > MP_HTTP_MAX_BODY) {
        b->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *grown;
        while (cap < b->len + n + 1)
            cap *= 2;
        grown = malloc(cap);
        if (grown == NULL)
            return 0;
        if (b->data) {
            memcpy(grown, b->data, b->len);
            mp_freezero(b->data, b->cap);
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static size_t read_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct mp_http_response *resp = userdata;
    size_t n = size * nitems;
    static const char name[] = "ratelimit:";

    /* A new status line (e.g. after 100-continue) starts a new header block. */
    if (n > 5 && strncmp(buf, "HTTP/", 5) == 0) {
        free(resp->ratelimit);
        resp->ratelimit = NULL;
    }
    if (resp->ratelimit == NULL && n > sizeof(name) - 1 && n < 512 &&
        strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        const char *v = buf + sizeof(name) - 1;
        size_t len = n - (sizeof(name) - 1);
        while (len && (*v == ' ' || *v == '\t')) {
            v++;
            len--;
        }
        while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
            len--;
        resp->ratelimit = strndup(v, len);
    }
    return n;
}

static mp_net_result map_curl_error(CURLcode rc, int too_large)
{
    if (too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return MP_NET_TOO_LARGE;
    switch (rc) {
    case CURLE_OK:
        return MP_NET_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR: /* handshake broken off: network-level */
        return MP_NET_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return MP_NET_TIMEOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return MP_NET_TLS;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
        return MP_NET_INTERNAL;
    default:
        return MP_NET_PROTOCOL;
    }
}

/* Resolves req->path against base_url; absolute URLs must stay on base_url. */
static char *build_url(const struct mp_config *cfg, const char *path)
{
    size_t blen = strlen(cfg->base_url);
    char *url;

    if (strstr(path, "://") != NULL) {
        if (strncmp(path, cfg->base_url, blen) != 0)
            return NULL;
        return strdup(path);
    }
    while (*path == '/')
        path++;
    url = malloc(blen + strlen(path) + 1);
    if (url == NULL)
        return NULL;
    memcpy(url, cfg->base_url, blen);
    strcpy(url + blen, path);
    return url;
}

static int set_common_options(mp_http *http, struct body_buffer *body,
                              struct mp_http_response *resp, char *errbuf)
{
    CURL *c = http->curl;
    const struct mp_config *cfg = http->cfg;
    CURLcode rc = CURLE_OK;

    curl_easy_reset(c);
    rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
                           cfg->allow_insecure_http ? "https,http" : "https");
    rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    rc |= curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (cfg->ca_file)
        rc |= curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
    rc |= curl_easy_setopt(c, CURLOPT_PROXY, ""); /* ignore *_proxy variables */
    rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, cfg->connect_timeout);
    /* the smaller of the per-request timeout and what the budget has left;
     * both fit a long (at most 300 s) */
    rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                           (long)(http->budget_ms < (int64_t)cfg->timeout * 1000
                                      ? http->budget_ms
                                      : (int64_t)cfg->timeout * 1000));
    rc |= curl_easy_setopt(c, CURLOPT_MAXFILESIZE, (long)MP_HTTP_MAX_BODY);
    rc |= curl_easy_setopt(c, CURLOPT_USERAGENT, "pam_medplum/" MP_VERSION " (Linux)");
    rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    rc |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, read_header);
    rc |= curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    return rc == CURLE_OK ? 0 : -1;
}

int mp_http_perform(mp_http *http, const struct mp_http_request *req, struct mp_http_response *resp)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct body_buffer body = {0};
    struct curl_slist *headers = NULL;
    char *url = NULL;
    int64_t started;
    CURLcode rc;
    int ret = -1;

    memset(resp, 0, sizeof(*resp));
    resp->net = MP_NET_INTERNAL;
    if (http->budget_ms <= 0) {
        resp->net = MP_NET_TIMEOUT;
        snprintf(resp->error, sizeof(resp->error),
                 "network time for this login used up (2 x timeout)");
        goto out;
    }
    url = build_url(http->cfg, req->path);
    if (url == NULL) {
        resp->net = MP_NET_PROTOCOL;
        snprintf(resp->error, sizeof(resp->error), "URL outside base_url refused");
        goto out;
    }
    if (set_common_options(http, &body, resp, errbuf) != 0) {
        snprintf(resp->error, sizeof(resp->error), "curl setup failed");
        goto out;
    }
    curl_easy_setopt(http->curl, CURLOPT_URL, url);
    headers = curl_slist_append(headers, "Accept: application/json");
    if (strcmp(req->method, "POST") == 0) {
        char ct[128];
        snprintf(ct, sizeof(ct), "Content-Type: %s", req->content_type);
        headers = curl_slist_append(headers, ct);
        curl_easy_setopt(http->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(http->curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(http->curl, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
        headers = curl_slist_append(headers, "Expect:");
    }
    if (req->bearer) {
        curl_easy_setopt(http->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(http->curl, CURLOPT_XOAUTH2_BEARER, req->bearer);
    } else if (req->basic_user && req->basic_pass) {
        curl_easy_setopt(http->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(http->curl, CURLOPT_USERNAME, req->basic_user);
        curl_easy_setopt(http->curl, CURLOPT_PASSWORD, req->basic_pass);
    }
    curl_easy_setopt(http->curl, CURLOPT_HTTPHEADER, headers);

    started = monotonic_ms();
    rc = curl_easy_perform(http->curl);
    http->budget_ms -= monotonic_ms() - started;
    resp->net = map_curl_error(rc, body.too_large);
    if (resp->net != MP_NET_OK) {
        snprintf(resp->error, sizeof(resp->error), "%.150s",
                 body.too_large ? "response larger than 1 MiB"
                 : errbuf[0]    ? errbuf
                                : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(http->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (body.data == NULL) {
        body.data = calloc(1, 1);
        body.cap = 1;
        if (body.data == NULL) {
            resp->net = MP_NET_INTERNAL;
            goto out;
        }
    }
    resp->body = body.data;
    resp->body_len = body.len;
    body.data = NULL;
    ret = 0;
out:
    /* Credentials must not linger in the reused handle between requests. */
    curl_easy_setopt(http->curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(http->curl, CURLOPT_XOAUTH2_BEARER, NULL);
    curl_easy_setopt(http->curl, CURLOPT_PASSWORD, NULL);
    curl_slist_free_all(headers);
    mp_freezero(body.data, body.cap);
    free(url);
    return ret;
}

void mp_http_response_free(struct mp_http_response *resp)
{
    if (resp == NULL)
        return;
    if (resp->body)
        mp_freezero(resp->body, resp->body_len);
    free(resp->ratelimit);
    memset(resp, 0, sizeof(*resp));
}

mp_status mp_http_status(const struct mp_http_response *resp)
{
    return mp_status_classify(resp->net, resp->status);
}

char *mp_form_escape(const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(value);
    char *out = malloc(len * 3 + 1);
    char *p = out;

    if (out == NULL)
        return NULL;
    for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '.' || *s == '_' || *s == '~') {
            *p++ = (char)*s;
        } else {
            *p++ = '%';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 15];
        }
    }
    *p = '\0';
    return out;
}
