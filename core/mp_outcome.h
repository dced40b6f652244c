/*
 * Turns one finished exchange into the taxonomy of mp_status.h plus a
 * readable reason.  mp_status_classify decides by transport and HTTP status;
 * this refines Medplum's 400 answers by their text: a "no" about the user
 * (wrong password, inactive membership, ...) stays MP_DENIED, while answers
 * that mean our own configuration or protocol is wrong (unknown client,
 * project mismatch, PKCE errors) become MP_ERROR, so they never count as an
 * explicit "no" (which would, e.g., delete a user's offline verifier).
 */
#ifndef MP_OUTCOME_H
#define MP_OUTCOME_H

#include <stddef.h>

#include "mp_http.h"
#include "mp_status.h"

mp_status mp_outcome_classify(const struct mp_http_response *resp, char *reason, size_t reason_len);

/* What a "no" says about the membership, where Medplum is explicit. */
enum mp_denial {
    MP_DENIAL_OTHER = 0,
    MP_DENIAL_MEMBERSHIP_INACTIVE, /* "Profile not active" */
};

/* As mp_outcome_classify, also telling which kind of "no" it was. */
mp_status mp_outcome_classify_detail(const struct mp_http_response *resp, char *reason,
                                     size_t reason_len, enum mp_denial *denial);

#endif
