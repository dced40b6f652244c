#include "mp_outcome.h"

#include <stdio.h>
#include <string.h>

#include "mp_json.h"

struct known_text {
    const char *medplum_text; /* prefix of details.text / error_description */
    mp_status status;
    const char *reason;
    enum mp_denial denial;
};

/* Texts from the recorded 5.0.10 exchanges and the contract (newest). */
static const struct known_text known[] = {
    {"Email or password is invalid", MP_DENIED, "wrong password", MP_DENIAL_OTHER},
    {"User not found", MP_DENIED, "unknown user or no membership of an allowed type",
     MP_DENIAL_OTHER},
    {"Profile not active", MP_DENIED, "membership inactive", MP_DENIAL_MEMBERSHIP_INACTIVE},
    {"IP address not allowed", MP_DENIED, "IP address not allowed by access policy",
     MP_DENIAL_OTHER},
    {"Invalid MFA token", MP_DENIED, "wrong MFA code", MP_DENIAL_OTHER},
    {"Invalid authentication method", MP_DENIED, "user has no password login", MP_DENIAL_OTHER},
    {"Google authentication is required", MP_DENIED, "project requires Google login",
     MP_DENIAL_OTHER},
    {"Valid email address is required", MP_DENIED, "email rejected by Medplum", MP_DENIAL_OTHER},
    {"Invalid password", MP_DENIED, "password rejected by Medplum (too short)", MP_DENIAL_OTHER},
    {"Password must be", MP_DENIED, "password rejected by Medplum (length)", MP_DENIAL_OTHER},
    {"Login expired", MP_DENIED, "MFA step took too long", MP_DENIAL_OTHER},
    {"Cannot authenticate: Invalid access policy", MP_ERROR,
     "membership access policy broken in Medplum", MP_DENIAL_OTHER},
    {"Invalid projectId", MP_ERROR, "config: client_id belongs to another project",
     MP_DENIAL_OTHER},
    {"Invalid origin", MP_ERROR, "config: client rejects this origin", MP_DENIAL_OTHER},
    {"Invalid code", MP_ERROR, "protocol: code rejected", MP_DENIAL_OTHER},
    {"Invalid client", MP_ERROR, "config: client rejected", MP_DENIAL_OTHER},
    {"Invalid secret", MP_ERROR, "config: client secret rejected", MP_DENIAL_OTHER},
    {"Missing", MP_ERROR, "protocol: request incomplete", MP_DENIAL_OTHER},
    {"Token already granted", MP_ERROR, "protocol: code reused", MP_DENIAL_OTHER},
    {"Login", MP_ERROR, "protocol: login state", MP_DENIAL_OTHER},
    {"Invalid profile", MP_ERROR, "protocol: membership choice rejected", MP_DENIAL_OTHER},
    {"Profile not found", MP_ERROR, "protocol: membership choice rejected", MP_DENIAL_OTHER},
    {"Content could not be parsed", MP_ERROR, "protocol: request not parsed", MP_DENIAL_OTHER},
};

static const struct known_text *lookup(const char *text)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strncmp(text, known[i].medplum_text, strlen(known[i].medplum_text)) == 0)
            return &known[i];
    return NULL;
}

mp_status mp_outcome_classify(const struct mp_http_response *resp, char *reason, size_t reason_len)
{
    return mp_outcome_classify_detail(resp, reason, reason_len, NULL);
}

mp_status mp_outcome_classify_detail(const struct mp_http_response *resp, char *reason,
                                     size_t reason_len, enum mp_denial *denial)
{
    mp_status st = mp_status_classify(resp->net, resp->status);
    char text[160] = "";
    const struct known_text *k;

    if (denial != NULL)
        *denial = MP_DENIAL_OTHER;
    if (denial != NULL)
        *denial = MP_DENIAL_OTHER;

    if (resp->net != MP_NET_OK) {
        snprintf(reason, reason_len, "%s: %s (%s)",
                 st == MP_UNAVAILABLE ? "Medplum unreachable" : "exchange with Medplum failed",
                 mp_net_result_name(resp->net), resp->error);
        return st;
    }
    if (st == MP_OK) {
        reason[0] = '\0';
        return st;
    }
    if (!mp_error_text(resp->body, resp->body_len, text, sizeof(text)))
        snprintf(text, sizeof(text), "no error text");
    if (resp->status == 429) {
        snprintf(reason, reason_len, "rate limited by Medplum (HTTP 429)");
        return st;
    }
    if (resp->status == 404) {
        snprintf(reason, reason_len,
                 "Medplum answered HTTP 404 (is client_id a ClientApplication of this "
                 "server?): %s",
                 text);
        return st;
    }
    if (st != MP_DENIED) {
        snprintf(reason, reason_len, "Medplum answered HTTP %ld: %s", resp->status, text);
        return st;
    }
    k = lookup(text);
    if (k == NULL) {
        snprintf(reason, reason_len, "Medplum refused (HTTP %ld): %s", resp->status, text);
        return MP_DENIED;
    }
    snprintf(reason, reason_len, "%s (Medplum: %s)", k->reason, text);
    if (denial != NULL)
        *denial = k->denial;
    if (denial != NULL)
        *denial = k->denial;
    return k->status;
}
