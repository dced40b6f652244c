/*
 * pam_medplum.conf: "key = value" lines, '#' comments, blank lines.
 *
 * One table in mp_config.c describes every key (type, default, limits), so
 * the parser, `medplumctl check-config` and pam_medplum.conf(5) agree.  The
 * parser reports every problem with file and line and then refuses the whole
 * file: a half-read configuration is never used.
 */
#ifndef MP_CONFIG_H
#define MP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "mp_log.h"

#ifndef MP_DEFAULT_CONFIG
#define MP_DEFAULT_CONFIG "/etc/medplum/pam_medplum.conf"
#endif
#ifndef MP_DEFAULT_CACHE_DIR
#define MP_DEFAULT_CACHE_DIR "/var/lib/pam_medplum"
#endif

#define MP_CONFIG_MAX_SIZE (64 * 1024)
#define MP_MAX_PROFILE_TYPES 4

enum mp_host_auth {
    MP_HOST_AUTH_CLIENT_CREDENTIALS = 0, /* POST /oauth2/token, Bearer afterwards */
    MP_HOST_AUTH_BASIC,                  /* HTTP Basic on every request */
};

enum mp_account_unknown {
    MP_ACCOUNT_UNKNOWN_DENY = 0,
    MP_ACCOUNT_UNKNOWN_ALLOW,
};

struct mp_config {
    char *path;  /* file it came from, for messages */
    bool parsed; /* the text was read and parsed (even with problems) */

    /* Medplum connection */
    char *base_url; /* normalised: always ends with '/' */
    char *project_id;
    char *client_id; /* optional ClientApplication for user logins (PKCE) */
    char *ca_file;   /* optional PEM bundle; NULL = system store */
    bool allow_insecure_http;
    long connect_timeout; /* seconds */
    long timeout;         /* seconds, whole request */

    /* user logins */
    char *email_domain;                                    /* alice -> alice@<email_domain> */
    char *allowed_profile_types[MP_MAX_PROFILE_TYPES + 1]; /* NULL-terminated */
    char *cache_dir;

    /* host credentials (medplumctl sync, account-phase live checks) */
    char *host_client_id;
    char *host_client_secret; /* wiped on free */
    char *host_client_secret_file;
    enum mp_host_auth host_auth;

    /* directory mapping (medplumctl sync) */
    char *username_source; /* "email" or "identifier:<system>" */
    char *uid_source;      /* "hash" or "identifier:<system>" */
    unsigned long uid_min;
    unsigned long uid_max;
    char *primary_group;       /* "private" or a group name */
    unsigned long primary_gid; /* gid of primary_group when it is not "private" */
    char *admin_group;         /* optional */
    unsigned long admin_gid;   /* gid of admin_group */
    char *home_template;       /* %u = user name */
    char *shell;

    /* account phase, offline login, backoff */
    long membership_max_age; /* seconds */
    enum mp_account_unknown account_unknown;
    long offline_ttl; /* seconds; 0 disables offline login */
    unsigned long offline_max_failures;
    bool offline_allow_mfa_users;
    long offline_backoff;     /* seconds, first backoff */
    long offline_backoff_max; /* seconds, ceiling of the doubling */
};

/* Sets every key to its default (strings owned by cfg). */
int mp_config_init(struct mp_config *cfg);
void mp_config_free(struct mp_config *cfg);

/*
 * Parses text as if read from `name`.  Logs every problem as
 * "<name>:<line>: <problem>" and returns the number of problems (0 = usable).
 * Does not check file ownership or permissions.
 */
int mp_config_parse(struct mp_config *cfg, const char *name, const char *text,
                    const mp_logger *log);

/*
 * Opens path (no symlinks), checks that it is a regular file owned by root
 * (or by the effective uid, so unprivileged test runs work), not writable by
 * group or others, and, if it holds a secret, not readable by group or
 * others; then parses it.  Returns the number of problems (0 = usable); cfg
 * must be freed either way.
 */
int mp_config_load(struct mp_config *cfg, const char *path, const mp_logger *log);

/* Reads the host client secret (inline, or from host_client_secret_file with
 * the same ownership/mode rules).  *secret must be freed with mp_secret_free.
 * Returns 0 on success. */
int mp_config_host_secret(const struct mp_config *cfg, char **secret, const mp_logger *log);

bool mp_config_profile_type_allowed(const struct mp_config *cfg, const char *type);

/* True when base_url's host is a loopback address or "localhost". */
bool mp_url_host_is_loopback(const char *url);

/* Checks ownership and mode of an open file; `what` names it in messages.
 * Shared with the cache code.  Returns 0 when acceptable. */
int mp_check_file_security(int fd, const char *what, bool secret, const mp_logger *log);

/* Writes a one-line-per-key description of the table (for --help/docs tests). */
struct mp_config_key_info {
    const char *key;
    const char *default_text;
    const char *description;
};
const struct mp_config_key_info *mp_config_keys(size_t *count);

#endif
