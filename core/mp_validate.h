/*
 * Local input checks made before any network request.
 *
 * User names follow the portable POSIX rule, tightened the way Debian's
 * adduser does: 1-32 characters from [a-z0-9_.-], starting with a letter or
 * '_', optionally ending in '$' (machine accounts are refused though: '$' is
 * not accepted here), never "." / ".." or containing "..".  So ':', '/',
 * whitespace, control characters, upper case and a leading '-' never pass.
 */
#ifndef MP_VALIDATE_H
#define MP_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#define MP_USERNAME_MAX 32
#define MP_PASSWORD_MAX 1024

bool mp_is_valid_username(const char *name);

/* Non-empty, at most MP_PASSWORD_MAX bytes, no control characters but tab.
 * Content is never altered (no trimming, no truncation). */
bool mp_is_acceptable_password(const char *password);

/* 8-4-4-4-12 hex, as Medplum ids are. */
bool mp_is_uuid(const char *s);

/* A conservative e-mail check: local@domain, printable ASCII, no spaces. */
bool mp_is_plausible_email(const char *s);

/* A 6-8 digit authenticator code after removing spaces; writes digits to out. */
bool mp_normalize_otp(const char *in, char *out, size_t outlen);

#endif
