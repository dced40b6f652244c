/*
 * The offline password verifier: a salted yescrypt hash from libcrypt, as
 * pam_unix writes to /etc/shadow on Debian (same default cost), so a stolen
 * verifier is exactly as hard to crack as a stolen shadow entry.  Never the
 * password, never a token.
 */
#ifndef MP_VERIFIER_H
#define MP_VERIFIER_H

#include <stdbool.h>

#include "mp_log.h"

/* Hashes password with a fresh salt; malloc'd crypt(3) string, or NULL
 * (logged).  Free with mp_secret_free. */
char *mp_verifier_make(const char *password, const mp_logger *log);

/* True when password matches; the comparison of the hashes takes the same
 * time wherever they differ, and every intermediate is wiped. */
bool mp_verifier_check(const char *verifier, const char *password);

#endif
