#include "mp_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_secret.h"

cJSON *mp_json_parse_object(const char *body, size_t len)
{
    cJSON *root;

    if (body == NULL || len == 0)
        return NULL;
    root = cJSON_ParseWithLength(body, len);
    if (root != NULL && !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

const char *mp_json_string(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const cJSON *mp_json_object(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsObject(v) ? v : NULL;
}

const cJSON *mp_json_array(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsArray(v) ? v : NULL;
}

bool mp_json_true(const cJSON *obj, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

const char *mp_json_reference(const cJSON *obj, const char *key)
{
    const cJSON *ref = mp_json_object(obj, key);

    return ref ? mp_json_string(ref, "reference") : NULL;
}

char *mp_json_print_secret(const cJSON *root)
{
    size_t size = 2048;

    for (;;) {
        char *buf = malloc(size);

        if (buf == NULL)
            return NULL;
        if (cJSON_PrintPreallocated((cJSON *)root, buf, (int)size, 0))
            return buf;
        mp_freezero(buf, size);
        if (size >= 4 * 1024 * 1024)
            return NULL;
        size *= 4;
    }
}

static void wipe_strings(cJSON *node)
{
    for (; node != NULL; node = node->next) {
        if (node->valuestring)
            explicit_bzero(node->valuestring, strlen(node->valuestring));
        wipe_strings(node->child);
    }
}

void mp_json_delete_wiping(cJSON *root)
{
    if (root == NULL)
        return;
    if (root->valuestring)
        explicit_bzero(root->valuestring, strlen(root->valuestring));
    wipe_strings(root->child);
    cJSON_Delete(root);
}

void mp_sanitize_for_log(const char *s, char *out, size_t outlen)
{
    size_t n = 0;

    if (outlen == 0)
        return;
    for (; s && *s && n + 1 < outlen; s++)
        out[n++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    out[n] = '\0';
}

static const cJSON *first_issue(const cJSON *root)
{
    const cJSON *issues;

    if (strcmp(mp_json_string(root, "resourceType") ? mp_json_string(root, "resourceType") : "",
               "OperationOutcome") != 0)
        return NULL;
    issues = mp_json_array(root, "issue");
    if (issues == NULL)
        return NULL;
    return cJSON_IsObject(cJSON_GetArrayItem(issues, 0)) ? cJSON_GetArrayItem(issues, 0) : NULL;
}

bool mp_error_text(const char *body, size_t len, char *out, size_t outlen)
{
    cJSON *root = mp_json_parse_object(body, len);
    const cJSON *issue;
    const char *text = NULL;
    bool found;

    if (outlen)
        out[0] = '\0';
    if (root == NULL)
        return false;
    issue = first_issue(root);
    if (issue != NULL) {
        const cJSON *details = mp_json_object(issue, "details");
        text = details ? mp_json_string(details, "text") : NULL;
        if (text == NULL)
            text = mp_json_string(issue, "diagnostics");
    }
    if (text == NULL)
        text = mp_json_string(root, "error_description");
    if (text == NULL)
        text = mp_json_string(root, "error");
    if (text == NULL)
        text = mp_json_string(root, "msg");
    found = text != NULL;
    if (found)
        mp_sanitize_for_log(text, out, outlen);
    cJSON_Delete(root);
    return found;
}

/* A double from the wire, as whole seconds, without overflowing the cast. */
static long clamp_seconds(double v)
{
    if (!(v >= 0))
        return -1;
    return v > 86400.0 ? 86400 : (long)v;
}

static long from_extension(const cJSON *root)
{
    const cJSON *ext = mp_json_array(root, "extension");
    const cJSON *e;

    cJSON_ArrayForEach(e, ext)
    {
        const char *url = mp_json_string(e, "url");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "valueUnsignedInt");
        if (url && strstr(url, "rate-limit-reset") && cJSON_IsNumber(v) && v->valuedouble >= 0)
            return clamp_seconds(v->valuedouble);
    }
    return -1;
}

static long from_diagnostics(const cJSON *issue)
{
    const char *diag = issue ? mp_json_string(issue, "diagnostics") : NULL;
    cJSON *d;
    const cJSON *ms;
    long secs = -1;

    if (diag == NULL)
        return -1;
    d = cJSON_Parse(diag);
    if (d == NULL)
        return -1;
    ms = cJSON_GetObjectItemCaseSensitive(d, "_msBeforeNext");
    if (!cJSON_IsNumber(ms))
        ms = cJSON_GetObjectItemCaseSensitive(d, "msBeforeNext");
    if (cJSON_IsNumber(ms) && ms->valuedouble >= 0)
        secs = clamp_seconds((ms->valuedouble + 999) / 1000);
    cJSON_Delete(d);
    return secs;
}

static long from_header(const char *h)
{
    const char *t;
    long v;

    if (h == NULL)
        return -1;
    /* "requests";r=0;t=41 */
    t = strstr(h, ";t=");
    if (t == NULL || sscanf(t + 3, "%ld", &v) != 1 || v < 0)
        return -1;
    return v;
}

long mp_retry_after(const char *body, size_t len, const char *ratelimit_header)
{
    cJSON *root = mp_json_parse_object(body, len);
    long secs = -1;

    if (root != NULL) {
        secs = from_extension(root);
        if (secs < 0) {
            const cJSON *issue = first_issue(root);
            if (issue == NULL) {
                const cJSON *issues = mp_json_array(root, "issue");
                issue = issues ? cJSON_GetArrayItem(issues, 0) : NULL;
            }
            secs = from_diagnostics(issue);
        }
        cJSON_Delete(root);
    }
    if (secs < 0)
        secs = from_header(ratelimit_header);
    if (secs < 0)
        secs = 60;
    if (secs < 1)
        secs = 1;
    if (secs > 3600)
        secs = 3600;
    return secs;
}
