/*
 * Type-checked access to cJSON values, and the parsers for Medplum's two
 * error shapes (OperationOutcome and OAuth {error, error_description}) and
 * for its rate-limit hints.  Nothing here trusts a field's type.
 */
#ifndef MP_JSON_H
#define MP_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

/* Parses a body of known length (not necessarily NUL-safe); NULL if not a JSON object. */
cJSON *mp_json_parse_object(const char *body, size_t len);

/* The member as a string, or NULL if absent or of another type. */
const char *mp_json_string(const cJSON *obj, const char *key);
/* The member as an object/array, or NULL. */
const cJSON *mp_json_object(const cJSON *obj, const char *key);
const cJSON *mp_json_array(const cJSON *obj, const char *key);
/* true only if the member is the JSON literal true. */
bool mp_json_true(const cJSON *obj, const char *key);
/* "reference" string of a Reference member, or NULL. */
const char *mp_json_reference(const cJSON *obj, const char *key);

/*
 * Extracts the human text of an error body: OperationOutcome issue[0]
 * details.text (or diagnostics), else OAuth error_description, else Express's
 * {"msg": ...}.  Returns false if the body has none of them.  The text is
 * cut to outlen and stripped of control characters (it goes to syslog).
 */
bool mp_error_text(const char *body, size_t len, char *out, size_t outlen);

/*
 * Seconds to wait after a 429, by the contract's rule: the rate-limit-reset
 * extension, else _msBeforeNext/msBeforeNext in issue diagnostics, else the
 * t= of the RateLimit header, else 60.  Clamped to [1, 3600].
 */
long mp_retry_after(const char *body, size_t len, const char *ratelimit_header);

/* Compact JSON text of a tree that holds secrets, printed into buffers we
 * own (cJSON_PrintUnformatted reallocs and leaves unwiped copies behind).
 * Free with mp_secret_free. */
char *mp_json_print_secret(const cJSON *root);

/* cJSON_Delete after overwriting every string in the tree: request and
 * response trees hold passwords, codes and tokens. */
void mp_json_delete_wiping(cJSON *root);

/* Copies s into out without control characters (for logs). */
void mp_sanitize_for_log(const char *s, char *out, size_t outlen);

#endif
