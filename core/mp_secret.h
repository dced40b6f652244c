/*
 * Secrets (passwords, PKCE verifiers, codes, tokens, client secrets) are
 * wiped before their memory is released, the way OpenSSH's freezero does.
 */
#ifndef MP_SECRET_H
#define MP_SECRET_H

#include <stddef.h>

/* explicit_bzero + free of a NUL-terminated string; NULL is fine. */
void mp_secret_free(char *secret);

/* explicit_bzero + free of a buffer of known length; NULL is fine. */
void mp_freezero(void *ptr, size_t len);

/* Overwrites *secret and sets it to NULL. */
void mp_secret_clear(char **secret);

/*
 * printf into a buffer of exactly the measured size, for text that holds a
 * secret: asprintf may grow (realloc) its buffer and leave an unwiped copy
 * in freed memory.  Free the result with mp_secret_free.
 */
char *mp_secret_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
