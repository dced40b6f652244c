/*
 * The little cryptography the login flow needs: SHA-256 and base64url for the
 * PKCE S256 challenge, and random bytes from the kernel.  SHA-256 is here (not
 * from a crypto library) because the module's dependencies are libpam,
 * libcurl and cJSON only; it is checked against the FIPS 180-4 vectors.
 */
#ifndef MP_CRYPTO_H
#define MP_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define MP_SHA256_LEN 32

void mp_sha256(const void *data, size_t len, uint8_t out[MP_SHA256_LEN]);

/* base64url without padding; out must hold 4*ceil(len/3)+1 bytes. Returns length. */
size_t mp_base64url(const uint8_t *in, size_t len, char *out, size_t outlen);

/* Standard base64 with padding (HTTP Basic, cache files). Returns length or 0. */
size_t mp_base64(const uint8_t *in, size_t len, char *out, size_t outlen);

/* Fills buf from getrandom(2). Returns 0, or -1 if the kernel cannot. */
int mp_random_bytes(void *buf, size_t len);

/* A PKCE pair: 64-character verifier and its S256 challenge (43 chars). */
struct mp_pkce {
    char verifier[65];
    char challenge[48]; /* 43 characters + NUL, with room for the padded size check */
};
int mp_pkce_generate(struct mp_pkce *pkce);
void mp_pkce_wipe(struct mp_pkce *pkce);

#endif
