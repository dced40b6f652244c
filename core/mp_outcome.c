#include "mp_outcome.h"

#include <stdio.h>
#include <string.h>

#include "mp_json.h"

struct known_text {
    const char *medplum_text; /* prefix of details.text / error_description */
    mp_status status;
    const char *reason;
};

/* Texts from the recorded 5.0.10 exchanges and the contract (newest). */
static const struct known_text known[] = {
    {"Email or password is invalid", MP_DENIED, "wrong password"},
    {"User not found", MP_DENIED, "unknown user or no membership of an allowed type"},
    {"Profile not active", MP_DENIED, "membership inactive"},
    {"IP address not allowed", MP_DENIED, "IP address not allowed by access policy"},
    {"Invalid MFA token", MP_DENIED, "wrong MFA code"},
    {"Invalid authentication method", MP_DENIED, "user has no password login"},
    {"Google authentication is required", MP_DENIED, "project requires Google login"},
    {"Valid email address is required", MP_DENIED, "email rejected by Medplum"},
    {"Invalid password", MP_DENIED, "password rejected by Medplum (too short)"},
    {"Password must be", MP_DENIED, "password rejected by Medplum (length)"},
    {"Login expired", MP_DENIED, "MFA step took too long"},
    {"Cannot authenticate: Invalid access policy", MP_ERROR,
     "membership access policy broken in Medplum"},
    {"Invalid projectId", MP_ERROR, "config: client_id belongs to another project"},
    {"Invalid origin", MP_ERROR, "config: client rejects this origin"},
    {"Invalid code", MP_ERROR, "protocol: code rejected"},
    {"Invalid client", MP_ERROR, "config: client rejected"},
    {"Invalid secret", MP_ERROR, "config: client secret rejected"},
    {"Missing", MP_ERROR, "protocol: request incomplete"},
    {"Token already granted", MP_ERROR, "protocol: code reused"},
    {"Login", MP_ERROR, "protocol: login state"},
    {"Invalid profile", MP_ERROR, "protocol: membership choice rejected"},
    {"Profile not found", MP_ERROR, "protocol: membership choice rejected"},
    {"Content could not be parsed", MP_ERROR, "protocol: request not parsed"},
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
    mp_status st = mp_status_classify(resp->net, resp->status);
    char text[160] = "";
    const struct known_text *k;

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
    return k->status;
}
