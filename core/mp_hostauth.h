/*
 * The workstation's own credentials towards Medplum (medplumctl sync and
 * status; account-phase live checks may reuse it).
 *
 * host_auth = client_credentials (default): one POST oauth2/token
 * grant_type=client_credentials per run, then Bearer on every request, and
 * POST oauth2/logout at the end so the Login does not stay valid for an hour.
 * Preferred because Medplum keeps accepting the retiring secret at the token
 * endpoint during a secret rotation, while Basic auth rejects it at once.
 *
 * host_auth = basic: Authorization: Basic base64(client_id:secret) on every
 * request, no token, nothing to log out.
 *
 * The secret and the token live only in this struct and are wiped by
 * mp_hostauth_end.
 */
#ifndef MP_HOSTAUTH_H
#define MP_HOSTAUTH_H

#include <stddef.h>

#include "mp_config.h"
#include "mp_http.h"
#include "mp_log.h"
#include "mp_status.h"

struct mp_hostauth {
    enum mp_host_auth mode;
    char client_id[40];
    char *secret;          /* wiped */
    char *token;           /* client_credentials access token, wiped */
    char client_name[128]; /* the ClientApplication's display name, if Medplum said */
};

/*
 * Reads the secret and, for client_credentials, obtains a token.  On failure
 * reason says why (never the secret) and the struct holds nothing to free
 * beyond what mp_hostauth_end releases.  MP_DENIED means Medplum rejected the
 * credentials; MP_UNAVAILABLE that it could not be asked.
 */
mp_status mp_hostauth_begin(struct mp_hostauth *ha, const struct mp_config *cfg,
                            const struct mp_transport *transport, const mp_logger *log,
                            char *reason, size_t reason_len);

/* Adds the Authorization of ha to a request (Bearer or Basic). */
void mp_hostauth_apply(const struct mp_hostauth *ha, struct mp_http_request *req);

/* Logs the client-credentials token out (when there is one) and wipes
 * everything.  Safe on a zeroed or already-ended struct. */
void mp_hostauth_end(struct mp_hostauth *ha, const struct mp_transport *transport,
                     const mp_logger *log);

#endif
