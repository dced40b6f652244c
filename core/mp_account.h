/*
 * Which Medplum account, if any, a local user name stands for.
 *
 * Decided without the network, in this order: a name that is not a valid
 * portable user name, or that exists in /etc/passwd (local accounts such as
 * root or labadmin), is not ours; a name the cache maps is bound to that
 * entry's email and Practitioner; otherwise, with email_domain set, the
 * name maps to name@email_domain with no Practitioner binding.
 */
#ifndef MP_ACCOUNT_H
#define MP_ACCOUNT_H

#include <stdbool.h>

#include "mp_config.h"
#include "mp_log.h"

#ifndef MP_PASSWD_FILE
#define MP_PASSWD_FILE "/etc/passwd"
#endif

enum mp_account_kind {
    MP_ACCOUNT_NOT_OURS = 0, /* invalid name, local account, or unmappable */
    MP_ACCOUNT_MANAGED,
};

struct mp_account {
    enum mp_account_kind kind;
    bool in_cache; /* the cache has an entry for the name */
    char email[256];
    char profile[128]; /* "Practitioner/<id>" when bound by the cache, else "" */
    char why[128];     /* reason, when not ours */
};

/* Checks only the name and /etc/passwd (no config needed). */
bool mp_account_is_foreign(const char *username, char *why, size_t why_len);

/* Full resolution (needs the config for cache_dir and email_domain).
 * Returns -1 (why set) when the cache is unusable: the caller fails closed. */
int mp_account_resolve(const struct mp_config *cfg, const char *username, struct mp_account *out,
                       const mp_logger *log);

/* 1 if the name is in the given passwd-format file (read directly, no NSS
 * involved), 0 if it is not, -1 if the file cannot be read completely. */
int mp_passwd_file_lookup(const char *path, const char *username);

/* True if the name is in the file, or if that cannot be known. */
bool mp_passwd_file_has(const char *path, const char *username);

#endif
