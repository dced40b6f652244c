/*
 * The single-value rules of the mapping (mp_idmap.h): the uid function, user
 * names, gecos and home.  Pure functions, so every workstation computes the
 * same thing and the unit tests can pin them.
 */
#include "mp_idmap.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "mp_crypto.h"
#include "mp_validate.h"

uint64_t mp_idmap_uid_hash(const char *practitioner_id)
{
    uint8_t digest[MP_SHA256_LEN];
    char lower[80];
    size_t n = 0;
    uint64_t h = 0;

    /* Medplum writes ids in lower case; normalise anyway so an upper-case
     * copy pasted into a fixture maps the same. */
    for (; practitioner_id[n] != '\0' && n + 1 < sizeof(lower); n++)
        lower[n] = (char)tolower((unsigned char)practitioner_id[n]);
    lower[n] = '\0';
    mp_sha256(lower, n, digest);
    for (int i = 0; i < 8; i++)
        h = (h << 8) | digest[i];
    return h;
}

uint32_t mp_idmap_uid_probe(const char *practitioner_id, uint32_t uid_min, uint32_t uid_max,
                            uint64_t k)
{
    uint64_t n = (uint64_t)uid_max - uid_min + 1;
    uint64_t h = mp_idmap_uid_hash(practitioner_id) % n;

    return uid_min + (uint32_t)((h + k % n) % n);
}

/* A short printable rendering of untrusted text for messages. */
static void shown(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 1 < outlen && n < 40; i++)
        out[n++] = ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) ? '?' : s[i];
    out[n] = '\0';
}

static int check_name(const char *name, size_t len, char *why, size_t why_len)
{
    char text[48];

    if (mp_is_valid_username(name))
        return 0;
    shown(name, len, text, sizeof(text));
    snprintf(why, why_len, "\"%s\" is not a valid portable user name", text);
    return -1;
}

int mp_idmap_name_from_email(const char *email, char *out, size_t outlen, char *why, size_t why_len)
{
    const char *at = email ? strrchr(email, '@') : NULL;
    size_t len;

    if (at == NULL || at == email) {
        snprintf(why, why_len, "no usable email");
        return -1;
    }
    len = (size_t)(at - email);
    if (len > MP_USERNAME_MAX || len >= outlen) {
        snprintf(why, why_len, "email local part is longer than %d characters", MP_USERNAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)email[i]);
    out[len] = '\0';
    return check_name(out, len, why, why_len);
}

int mp_idmap_username(const struct mp_config *cfg, const struct mp_dir_entry *e, char *out,
                      size_t outlen, char *why, size_t why_len)
{
    const char *system, *value;
    size_t len;

    if (cfg->username_source == NULL || strcmp(cfg->username_source, "email") == 0)
        return mp_idmap_name_from_email(e->telecom_email ? e->telecom_email : e->login_email, out,
                                        outlen, why, why_len);
    system = cfg->username_source + strlen("identifier:");
    value = mp_dir_ident_find(e->prac_ids, e->nprac_ids, system);
    if (value == NULL) {
        snprintf(why, why_len, "no Practitioner identifier with system %.80s", system);
        return -1;
    }
    len = strlen(value);
    if (len >= outlen) {
        snprintf(why, why_len, "identifier user name is too long");
        return -1;
    }
    memcpy(out, value, len + 1);
    return check_name(out, len, why, why_len);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one
 * (overlong forms, surrogates and code points over U+10FFFF included). */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
            return 0;
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* C0, DEL and the C1 controls (U+0080-U+009F, encoded c2 80-c2 9f), plus the
 * passwd separator ':' and the gecos subfield separator ','. */
static bool is_blanked(const unsigned char *s, size_t len)
{
    if (len == 1)
        return s[0] < 0x20 || s[0] == 0x7f || s[0] == ':' || s[0] == ',';
    return len == 2 && s[0] == 0xc2 && s[1] <= 0x9f;
}

void mp_idmap_gecos(const char *in, char *out, size_t outlen)
{
    const unsigned char *s = (const unsigned char *)(in ? in : "");
    size_t n = 0, max = outlen ? outlen - 1 : 0;

    if (outlen == 0)
        return;
    if (max > MP_GECOS_MAX)
        max = MP_GECOS_MAX;
    while (*s != '\0') {
        size_t len = utf8_len(s);
        const char *piece = (const char *)s;
        size_t plen = len;

        if (len == 0) {
            piece = "?";
            plen = 1;
            len = 1;
        } else if (is_blanked(s, len)) {
            piece = " ";
            plen = 1;
        }
        s += len;
        if (piece[0] == ' ' && plen == 1 && (n == 0 || out[n - 1] == ' '))
            continue; /* no leading or doubled spaces */
        if (n + plen > max)
            break; /* never cut a character in half */
        memcpy(out + n, piece, plen);
        n += plen;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

int mp_idmap_home(const char *home_template, const char *name, char *out, size_t outlen)
{
    size_t n = 0;

    for (const char *p = home_template; *p != '\0'; p++) {
        const char *piece = p;
        size_t plen = 1;

        if (p[0] == '%' && p[1] == 'u') {
            piece = name;
            plen = strlen(name);
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            p++;
        }
        if (n + plen >= outlen)
            return -1;
        memcpy(out + n, piece, plen);
        n += plen;
    }
    out[n] = '\0';
    return 0;
}
