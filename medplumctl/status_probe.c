#include "status_probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "mp_json.h"

struct body {
    char buf[16384];
    size_t len;
};

static size_t keep_body(char *ptr, size_t size, size_t nmemb, void *ctx)
{
    struct body *b = ctx;
    size_t n = size * nmemb, room = sizeof(b->buf) - 1 - b->len;

    memcpy(b->buf + b->len, ptr, n < room ? n : room);
    b->len += n < room ? n : room;
    return n; /* a long page is cut, not an error */
}

/* "Subject:CN=..." of the first certificate (the server's). */
static void cert_field(const struct curl_certinfo *ci, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);

    if (ci == NULL || ci->num_of_certs < 1)
        return;
    for (const struct curl_slist *s = ci->certinfo[0]; s != NULL; s = s->next)
        if (strncmp(s->data, name, nl) == 0 && s->data[nl] == ':')
            mp_sanitize_for_log(s->data + nl + 1, out, len);
}

static void collect(CURL *c, struct status_probe *p, const struct body *b)
{
    struct curl_certinfo *ci = NULL;
    curl_off_t t;
    char *ip = NULL;
    cJSON *root;

    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &p->http_status);
    if (curl_easy_getinfo(c, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip != NULL)
        snprintf(p->ip, sizeof(p->ip), "%s", ip);
    if (curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &t) == CURLE_OK)
        p->connect_ms = (double)t / 1000.0;
    if (curl_easy_getinfo(c, CURLINFO_APPCONNECT_TIME_T, &t) == CURLE_OK)
        p->tls_ms = (double)t / 1000.0;
    if (curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &t) == CURLE_OK)
        p->total_ms = (double)t / 1000.0;
    if (p->tls && curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) == CURLE_OK) {
        cert_field(ci, "Subject", p->subject, sizeof(p->subject));
        cert_field(ci, "Issuer", p->issuer, sizeof(p->issuer));
        cert_field(ci, "Expire date", p->expires, sizeof(p->expires));
    }
    root = mp_json_parse_object(b->buf, b->len);
    if (root != NULL && mp_json_string(root, "version") != NULL)
        mp_sanitize_for_log(mp_json_string(root, "version"), p->version, sizeof(p->version));
    cJSON_Delete(root);
}

static bool get(const struct mp_config *cfg, const char *path, struct status_probe *p)
{
    char url[2048], errbuf[CURL_ERROR_SIZE] = "";
    struct body *b = calloc(1, sizeof(*b));
    CURL *c = curl_easy_init();
    CURLcode rc = CURLE_FAILED_INIT;

    snprintf(p->path, sizeof(p->path), "%s", path);
    snprintf(url, sizeof(url), "%s%s", cfg->base_url, path);
    p->tls = strncmp(cfg->base_url, "https://", 8) == 0;
    if (c != NULL && b != NULL) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
                         cfg->allow_insecure_http ? "https,http" : "https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        if (cfg->ca_file != NULL)
            curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
        curl_easy_setopt(c, CURLOPT_PROXY, "");
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, cfg->connect_timeout);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, cfg->timeout);
        curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "medplumctl/" MP_VERSION " (Linux)");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
        rc = curl_easy_perform(c);
    }
    p->reachable = rc == CURLE_OK;
    p->tls_failed = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
                    rc == CURLE_SSL_CERTPROBLEM;
    if (rc == CURLE_OK)
        collect(c, p, b);
    else
        mp_sanitize_for_log(errbuf[0] ? errbuf : curl_easy_strerror(rc), p->error,
                            sizeof(p->error));
    curl_easy_cleanup(c);
    free(b);
    return p->reachable && p->http_status == 200;
}

void status_probe_run(const struct mp_config *cfg, struct status_probe *p)
{
    memset(p, 0, sizeof(*p));
    if (get(cfg, "healthcheck", p) || !p->reachable)
        return;
    /* Some deployments do not route /healthcheck. */
    get(cfg, ".well-known/openid-configuration", p);
}
