/*
 * Serialises struct mp_cache_data into the accounts.db image described in
 * mp_cache_format.h.  Internal to the cache writer (mp_cache.c); the data
 * must already have passed mp_cache_validate().
 */
#ifndef MP_CACHE_ENCODE_H
#define MP_CACHE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "mp_cache.h"

/* Returns 0 and a malloc'd image in *out, or -1 with a reason in why. */
int mp_cache_encode(const struct mp_cache_data *data, uint8_t **out, size_t *outlen, char *why,
                    size_t whylen);

/* Checks what the encoder cannot represent or NSS must never answer:
 * invalid or duplicate names and ids, uid/gid 0, ':' or newlines in passwd
 * fields, a uid reserved for a different profile.  Logs every problem;
 * returns the number found. */
int mp_cache_validate(const struct mp_cache_data *data, const mp_logger *log);

#endif
