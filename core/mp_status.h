/*
 * The one error taxonomy of pam_medplum.
 *
 * Every outcome of talking to Medplum is exactly one of these.  Only
 * MP_UNAVAILABLE ("we could not ask") may lead to offline login or backoff;
 * MP_DENIED ("Medplum said no") and MP_ERROR ("anything else") both deny.
 * The mapping from transport results and HTTP answers to this enum lives in
 * mp_status.c and nowhere else.
 */
#ifndef MP_STATUS_H
#define MP_STATUS_H

#include <stdbool.h>

typedef enum {
    MP_OK = 0,
    MP_DENIED,      /* Medplum answered, and the answer is no */
    MP_UNAVAILABLE, /* network failure, timeout, 5xx, 429: we could not ask */
    MP_ERROR,       /* config, protocol violation, bad JSON, internal error */
} mp_status;

/* Transport-level result of one HTTP exchange, as seen by mp_http. */
typedef enum {
    MP_NET_OK = 0,    /* a complete HTTP response arrived */
    MP_NET_CONNECT,   /* DNS/connect/refused/reset before an answer */
    MP_NET_TIMEOUT,   /* connect or total timeout */
    MP_NET_TLS,       /* TLS verification failed: never "unavailable" */
    MP_NET_TOO_LARGE, /* response body over the limit */
    MP_NET_PROTOCOL,  /* redirect, malformed HTTP, anything else */
    MP_NET_INTERNAL,  /* out of memory, curl setup failure */
} mp_net_result;

const char *mp_status_name(mp_status st);
const char *mp_net_result_name(mp_net_result r);

/*
 * Classifies one exchange.  A 2xx answer is MP_OK (the caller still has to
 * validate the body and may turn it into MP_ERROR); 400/401/403 are
 * Medplum's "no" (404: unknown client or login handle, MP_ERROR); 429 and 5xx are "could not ask";
 * a network failure is "could not ask" except TLS failures, which are MP_ERROR (a wrong peer is not
 * an outage and must not open the offline path).
 */
mp_status mp_status_classify(mp_net_result net, long http_status);

/* True only for the outcomes that may fall back to offline login/backoff. */
bool mp_status_allows_offline(mp_status st);

#endif
