#include "mp_validate.h"

#include <ctype.h>
#include <string.h>

bool mp_is_valid_username(const char *name)
{
    size_t len;

    if (name == NULL)
        return false;
    len = strlen(name);
    if (len == 0 || len > MP_USERNAME_MAX)
        return false;
    if (!(islower((unsigned char)name[0]) || name[0] == '_'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(islower(c) || isdigit(c) || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return strstr(name, "..") == NULL;
}

bool mp_is_acceptable_password(const char *password)
{
    size_t len;

    if (password == NULL || password[0] == '\0')
        return false;
    len = strnlen(password, MP_PASSWORD_MAX + 1);
    if (len > MP_PASSWORD_MAX)
        return false;
    /*
     * Control characters other than tab cannot be typed into a password
     * prompt.  sshd sends "\b\n\r\177INCORRECT" for users it does not know:
     * refusing it here keeps such probes from ever reaching Medplum.
     */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)password[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

bool mp_is_uuid(const char *s)
{
    static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    if (s == NULL || strlen(s) != sizeof(pattern) - 1)
        return false;
    for (size_t i = 0; pattern[i]; i++) {
        if (pattern[i] == '-') {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

bool mp_is_plausible_email(const char *s)
{
    const char *at;

    if (s == NULL || strlen(s) > 254)
        return false;
    at = strchr(s, '@');
    if (at == NULL || at == s || strchr(at + 1, '@') != NULL || at[1] == '\0')
        return false;
    if (strchr(at + 1, '.') == NULL && strcmp(at + 1, "localhost") != 0)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '"' || *p == '\\')
            return false;
    return true;
}

bool mp_normalize_otp(const char *in, char *out, size_t outlen)
{
    size_t n = 0;

    if (in == NULL || outlen == 0)
        return false;
    for (; *in; in++) {
        if (*in == ' ' || *in == '-')
            continue;
        if (!isdigit((unsigned char)*in) || n + 1 >= outlen)
            return false;
        out[n++] = *in;
    }
    out[n] = '\0';
    return n >= 6 && n <= 8;
}
