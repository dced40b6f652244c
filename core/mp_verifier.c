#include "mp_verifier.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "mp_secret.h"

/* "$y$" with count 0 = libcrypt's default yescrypt cost (pam_unix's too). */
#define MP_VERIFIER_PREFIX "$y$"

char *mp_verifier_make(const char *password, const mp_logger *log)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *data = NULL;
    const char *hash;
    char *out = NULL;

    /* NULL random bytes: libcrypt draws the salt from the kernel itself. */
    if (crypt_gensalt_rn(MP_VERIFIER_PREFIX, 0, NULL, 0, salt, sizeof(salt)) == NULL) {
        mp_log(log, LOG_ERR, "offline verifier: yescrypt not available in libcrypt");
        return NULL;
    }
    data = calloc(1, sizeof(*data));
    if (data == NULL)
        return NULL;
    hash = crypt_rn(password, salt, data, sizeof(*data));
    if (hash == NULL || strncmp(hash, MP_VERIFIER_PREFIX, 3) != 0)
        mp_log(log, LOG_ERR, "offline verifier: hashing failed");
    else if ((out = strdup(hash)) == NULL)
        mp_log(log, LOG_ERR, "offline verifier: out of memory");
    mp_freezero(data, sizeof(*data));
    return out;
}

/* Compares n bytes without an early exit. */
static bool same_bytes(const char *a, const char *b, size_t n)
{
    volatile unsigned char diff = 0;

    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
    return diff == 0;
}

bool mp_verifier_check(const char *verifier, const char *password)
{
    struct crypt_data *data;
    const char *hash;
    size_t n;
    bool ok = false;

    if (verifier == NULL || password == NULL || verifier[0] != '$')
        return false;
    data = calloc(1, sizeof(*data));
    if (data == NULL)
        return false;
    hash = crypt_rn(password, verifier, data, sizeof(*data));
    /* Same-length crypt strings of the same setting; a failure output
     * ("*0"/"*1") has another length and never matches. */
    n = strlen(verifier);
    if (hash != NULL && hash[0] == '$' && strlen(hash) == n)
        ok = same_bytes(hash, verifier, n);
    mp_freezero(data, sizeof(*data));
    return ok;
}
