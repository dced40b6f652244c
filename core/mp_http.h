/*
 * HTTP client on libcurl.  One mp_http (one curl easy handle) per PAM
 * transaction or medplumctl run, so every request of a login reuses one TLS
 * connection.  TLS peer and host are always verified; redirects are never
 * followed; bodies over MP_HTTP_MAX_BODY are refused; proxies from the
 * environment are ignored (a user running su must not redirect us).
 *
 * The login flow talks to an mp_transport, not to libcurl, so unit tests can
 * drive it with recorded responses.
 */
#ifndef MP_HTTP_H
#define MP_HTTP_H

#include <stddef.h>

#include "mp_config.h"
#include "mp_log.h"
#include "mp_status.h"

#define MP_HTTP_MAX_BODY (1024 * 1024)

struct mp_http_request {
    const char *method;       /* "GET" or "POST" */
    const char *path;         /* relative to base_url ("auth/login"), or an
                                 absolute URL that starts with base_url */
    const char *content_type; /* POST only */
    const char *body;         /* POST only; may hold secrets */
    size_t body_len;
    const char *bearer;     /* Authorization: Bearer <token>, or NULL */
    const char *basic_user; /* Authorization: Basic, with basic_pass */
    const char *basic_pass;
};

struct mp_http_response {
    mp_net_result net;
    long status; /* HTTP status when net == MP_NET_OK */
    char *body;  /* NUL-terminated, wiped on free; may hold tokens */
    size_t body_len;
    char *ratelimit; /* first RateLimit header value, or NULL */
    char error[160]; /* transport error for logs (never contains secrets) */
};

struct mp_transport {
    int (*perform)(void *ctx, const struct mp_http_request *req, struct mp_http_response *resp);
    void *ctx;
};

typedef struct mp_http mp_http;

mp_http *mp_http_open(const struct mp_config *cfg, const mp_logger *log);
void mp_http_close(mp_http *http);
struct mp_transport mp_http_transport(mp_http *http);

/* Performs one exchange; always fills resp (resp->net says what happened).
 * Returns 0 when a complete HTTP response arrived. */
int mp_http_perform(mp_http *http, const struct mp_http_request *req,
                    struct mp_http_response *resp);

void mp_http_response_free(struct mp_http_response *resp);

/* Convenience: classify a finished exchange with the one taxonomy. */
mp_status mp_http_status(const struct mp_http_response *resp);

/* application/x-www-form-urlencoded escaping; returns malloc'd text. */
char *mp_form_escape(const char *value);

#endif
