/*
 * One unauthenticated GET of <base_url>healthcheck (falling back to
 * .well-known/openid-configuration) with the same TLS rules as mp_http
 * (peer and host verified, TLS >= 1.2, ca_file, no proxy, no redirects),
 * keeping what mp_http does not report: the certificate chain's subject,
 * issuer and expiry, timings and the server's version.
 */
#ifndef STATUS_PROBE_H
#define STATUS_PROBE_H

#include <stdbool.h>

#include "mp_config.h"

struct status_probe {
    bool reachable; /* a complete HTTP answer arrived */
    long http_status;
    char path[48];   /* which URL answered */
    char error[256]; /* transport/TLS error text */
    bool tls_failed; /* the server answered, but its certificate was not accepted */
    bool tls;
    char ip[64];
    double connect_ms, tls_ms, total_ms;
    char subject[256], issuer[256], expires[64];
    char version[64]; /* healthcheck "version" */
};

void status_probe_run(const struct mp_config *cfg, struct status_probe *p);

#endif
