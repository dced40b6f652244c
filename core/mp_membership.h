/*
 * Live membership lookup with the host credentials, for the account phase
 * of users who did not just log in with a password (SSH keys, su, sudo -u,
 * cron):
 *
 *   GET fhir/R4/ProjectMembership?profile=<Type>/<id>
 *
 * with the workstation's own client (mp_hostauth.h).  Only a 200 Bundle is
 * an answer about the user: a membership of the configured project whose
 * `active` is not false means active (5.0.10 omits `active` on invited
 * memberships), only inactive ones mean inactive, none means absent.  A
 * rejection of the host credentials (401/403, "Invalid secret") says
 * nothing about the user and comes back as MP_ERROR, never as a revocation.
 */
#ifndef MP_MEMBERSHIP_H
#define MP_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>

#include "mp_config.h"
#include "mp_http.h"
#include "mp_log.h"
#include "mp_state.h"
#include "mp_status.h"

/* True when the config names host credentials at all. */
bool mp_membership_can_check(const struct mp_config *cfg);

/* MP_OK with *state set, MP_UNAVAILABLE (could not ask: back off) or
 * MP_ERROR; reason says why for the log. */
mp_status mp_membership_lookup(const struct mp_config *cfg, const struct mp_transport *transport,
                               const char *profile, enum mp_membership_state *state, char *reason,
                               size_t reason_len, const mp_logger *log);

/* Interprets a search Bundle (exposed for the unit tests). */
mp_status mp_membership_from_bundle(const struct mp_config *cfg, const char *profile,
                                    const char *body, size_t len, enum mp_membership_state *state,
                                    char *reason, size_t reason_len);

#endif
