#include "mp_membership.h"

#include <stdio.h>
#include <string.h>

#include "mp_hostauth.h"
#include "mp_json.h"
#include "mp_outcome.h"
#include "mp_validate.h"

bool mp_membership_can_check(const struct mp_config *cfg)
{
    return cfg->host_client_id != NULL &&
           (cfg->host_client_secret != NULL || cfg->host_client_secret_file != NULL);
}

/* "Type/<uuid>" only: the value goes into a query string unescaped. */
static bool plausible_profile(const char *profile)
{
    const char *slash = profile ? strchr(profile, '/') : NULL;

    if (slash == NULL || slash == profile || !mp_is_uuid(slash + 1))
        return false;
    for (const char *p = profile; p < slash; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
            return false;
    return true;
}

static bool ours(const struct mp_config *cfg, const char *profile, const cJSON *m)
{
    const char *project = mp_json_reference(m, "project");
    const char *member_profile = mp_json_reference(m, "profile");
    const char *type = mp_json_string(m, "resourceType");

    return type != NULL && strcmp(type, "ProjectMembership") == 0 && project != NULL &&
           strncmp(project, "Project/", 8) == 0 && strcmp(project + 8, cfg->project_id) == 0 &&
           member_profile != NULL && strcmp(member_profile, profile) == 0;
}

mp_status mp_membership_from_bundle(const struct mp_config *cfg, const char *profile,
                                    const char *body, size_t len, enum mp_membership_state *state,
                                    char *reason, size_t reason_len)
{
    cJSON *root = mp_json_parse_object(body, len);
    const cJSON *entries, *e;
    const char *type;
    int active = 0, inactive = 0;
    mp_status st = MP_ERROR;

    *state = MP_MEMBERSHIP_UNKNOWN;
    type = root ? mp_json_string(root, "resourceType") : NULL;
    if (type == NULL || strcmp(type, "Bundle") != 0) {
        snprintf(reason, reason_len, "membership search answer is not a Bundle");
        goto out;
    }
    entries = mp_json_array(root, "entry");
    if (entries == NULL && cJSON_GetObjectItemCaseSensitive(root, "entry") != NULL) {
        snprintf(reason, reason_len, "membership search answer has a malformed entry list");
        goto out;
    }
    cJSON_ArrayForEach(e, entries)
    {
        const cJSON *m = cJSON_IsObject(e) ? mp_json_object(e, "resource") : NULL;

        if (m == NULL || !ours(cfg, profile, m))
            continue;
        /* Absent `active` is active (invited memberships in 5.0.10). */
        if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(m, "active")))
            inactive++;
        else
            active++;
    }
    *state = active     ? MP_MEMBERSHIP_ACTIVE
             : inactive ? MP_MEMBERSHIP_INACTIVE
                        : MP_MEMBERSHIP_ABSENT;
    snprintf(reason, reason_len, "membership %s (live check: %d active, %d inactive)",
             mp_membership_state_name(*state), active, inactive);
    st = MP_OK;
out:
    cJSON_Delete(root);
    return st;
}

static mp_status search(const struct mp_config *cfg, const struct mp_transport *transport,
                        const struct mp_hostauth *ha, const char *profile,
                        enum mp_membership_state *state, char *reason, size_t reason_len)
{
    struct mp_http_request req = {0};
    struct mp_http_response resp;
    char path[256];
    mp_status st;

    snprintf(path, sizeof(path), "fhir/R4/ProjectMembership?profile=%s&_count=50", profile);
    req.method = "GET";
    req.path = path;
    mp_hostauth_apply(ha, &req);
    transport->perform(transport->ctx, &req, &resp);
    st = mp_outcome_classify(&resp, reason, reason_len);
    if (st == MP_OK)
        st = mp_membership_from_bundle(cfg, profile, resp.body, resp.body_len, state, reason,
                                       reason_len);
    else if (st == MP_DENIED)
        st = MP_ERROR; /* a "no" to the host's credentials, not about the user */
    mp_http_response_free(&resp);
    return st;
}

mp_status mp_membership_lookup(const struct mp_config *cfg, const struct mp_transport *transport,
                               const char *profile, enum mp_membership_state *state, char *reason,
                               size_t reason_len, const mp_logger *log)
{
    struct mp_hostauth ha;
    mp_status st;

    *state = MP_MEMBERSHIP_UNKNOWN;
    if (!plausible_profile(profile)) {
        snprintf(reason, reason_len, "no valid profile reference known for the user");
        return MP_ERROR;
    }
    st = mp_hostauth_begin(&ha, cfg, transport, log, reason, reason_len);
    if (st == MP_OK)
        st = search(cfg, transport, &ha, profile, state, reason, reason_len);
    else if (st == MP_DENIED)
        st = MP_ERROR;
    /* After a network failure the logout would wait for a second timeout;
     * the client token then simply expires on its own. */
    mp_hostauth_end(&ha, st == MP_UNAVAILABLE ? NULL : transport, log);
    return st;
}
