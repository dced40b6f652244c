#include "mp_config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mp_secret.h"
#include "mp_validate.h"

enum key_type {
    T_STRING,         /* free text, no control characters */
    T_URL,            /* base_url rules */
    T_UUID,           /* Medplum resource id */
    T_PATH,           /* absolute path */
    T_SECONDS,        /* non-negative integer, bounded */
    T_UINT,           /* unsigned integer, bounded */
    T_BOOL,           /* yes/no/true/false/1/0 */
    T_TYPES,          /* comma list of FHIR resource types */
    T_HOSTAUTH,       /* client_credentials | basic */
    T_UNKNOWN_POLICY, /* deny | allow */
    T_SOURCE,         /* email | identifier:<system> (username_source) */
    T_UIDSRC,         /* hash | identifier:<system> */
    T_GROUP,          /* "private" or a POSIX group name */
    T_GROUPNAME,      /* a POSIX group name */
    T_SHELL,          /* absolute path */
    T_HOME,           /* absolute path template with %u */
    T_SECRET,         /* inline secret: makes the file secret-bearing */
    T_DOMAIN,         /* DNS domain (email_domain) */
};

struct key_def {
    const char *key;
    enum key_type type;
    size_t offset;
    const char *default_text; /* NULL: no default */
    long long min, max;       /* for numbers */
    const char *description;
};

#define OFF(field) offsetof(struct mp_config, field)

static const struct key_def keys[] = {
    {"base_url", T_URL, OFF(base_url), NULL, 0, 0,
     "Medplum server base URL (https://...; http:// only for loopback with allow_insecure_http). "
     "Required."},
    {"project_id", T_UUID, OFF(project_id), NULL, 0, 0,
     "Id of the Medplum Project whose active members may log in. Required."},
    {"client_id", T_UUID, OFF(client_id), NULL, 0, 0,
     "ClientApplication used for user logins (PKCE, no secret on the host). Optional."},
    {"ca_file", T_PATH, OFF(ca_file), NULL, 0, 0,
     "PEM CA bundle to verify the server; default: the system trust store."},
    {"allow_insecure_http", T_BOOL, OFF(allow_insecure_http), "no", 0, 0,
     "Permit http:// base_url, and only for a loopback host (testing)."},
    {"connect_timeout", T_SECONDS, OFF(connect_timeout), "5", 1, 60,
     "Seconds to establish the connection."},
    {"timeout", T_SECONDS, OFF(timeout), "20", 1, 300,
     "Seconds for one whole request (/auth/login can be slow)."},
    {"email_domain", T_DOMAIN, OFF(email_domain), NULL, 0, 0,
     "Linux user alice logs in as alice@<email_domain> unless the cache maps the name."},
    {"allowed_profile_types", T_TYPES, OFF(allowed_profile_types), "Practitioner", 0, 0,
     "Comma list of membership profile types that may log in."},
    {"cache_dir", T_PATH, OFF(cache_dir), MP_DEFAULT_CACHE_DIR, 0, 0,
     "Root-owned cache directory shared with nss_medplum."},
    {"host_client_id", T_UUID, OFF(host_client_id), NULL, 0, 0,
     "The workstation's own ClientApplication (medplumctl sync, account checks)."},
    {"host_client_secret", T_SECRET, OFF(host_client_secret), NULL, 0, 0,
     "Its secret; the file must then be mode 0600. Prefer host_client_secret_file."},
    {"host_client_secret_file", T_PATH, OFF(host_client_secret_file), NULL, 0, 0,
     "File (root, 0600) holding the host client secret."},
    {"host_auth", T_HOSTAUTH, OFF(host_auth), "client_credentials", 0, 0,
     "client_credentials (OAuth2, survives secret rotation) or basic."},
    {"username_source", T_SOURCE, OFF(username_source), "email", 0, 0,
     "email (local part, lowercased) or identifier:<system>."},
    {"uid_source", T_UIDSRC, OFF(uid_source), "hash", 0, 0,
     "hash (of the Practitioner id) or identifier:<system>."},
    {"uid_min", T_UINT, OFF(uid_min), "200000", 1000, 2147483647,
     "Lowest uid given to Medplum users."},
    {"uid_max", T_UINT, OFF(uid_max), "299999", 1000, 2147483647,
     "Highest uid given to Medplum users."},
    {"primary_group", T_GROUP, OFF(primary_group), "private", 0, 0,
     "private (a group per user, gid = uid) or the name of a shared group."},
    {"primary_gid", T_UINT, OFF(primary_gid), "0", 0, 2147483647,
     "gid of the shared primary_group."},
    {"admin_group", T_GROUPNAME, OFF(admin_group), NULL, 0, 0,
     "Optional group whose members are the project admins."},
    {"admin_gid", T_UINT, OFF(admin_gid), "0", 0, 2147483647, "gid of admin_group."},
    {"home_template", T_HOME, OFF(home_template), "/home/%u", 0, 0,
     "Home directory; %u is the user name."},
    {"shell", T_SHELL, OFF(shell), "/bin/bash", 0, 0, "Login shell."},
    {"membership_max_age", T_SECONDS, OFF(membership_max_age), "3600", 0, 31536000,
     "Seconds the known membership state is trusted by the account phase."},
    {"account_unknown", T_UNKNOWN_POLICY, OFF(account_unknown), "deny", 0, 0,
     "deny or allow when the account phase cannot learn the membership state."},
    {"offline_ttl", T_SECONDS, OFF(offline_ttl), "259200", 0, 31536000,
     "Seconds after the last online login during which offline login works; 0 disables."},
    {"offline_max_failures", T_UINT, OFF(offline_max_failures), "5", 1, 1000,
     "Offline failures in a row before offline login is refused until the next online one."},
    {"offline_allow_mfa_users", T_BOOL, OFF(offline_allow_mfa_users), "no", 0, 0,
     "Allow offline login for users whose online login needed MFA."},
    {"offline_backoff", T_SECONDS, OFF(offline_backoff), "60", 1, 86400,
     "Seconds to skip the network after a failure (doubles while it keeps failing)."},
    {"offline_backoff_max", T_SECONDS, OFF(offline_backoff_max), "900", 1, 86400,
     "Ceiling of the backoff."},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static struct mp_config_key_info key_infos[NKEYS];

const struct mp_config_key_info *mp_config_keys(size_t *count)
{
    for (size_t i = 0; i < NKEYS; i++) {
        key_infos[i].key = keys[i].key;
        key_infos[i].default_text = keys[i].default_text;
        key_infos[i].description = keys[i].description;
    }
    *count = NKEYS;
    return key_infos;
}

/* ---- value parsers: each returns NULL on success or a problem text ---- */

static bool has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static const char *parse_number(const char *v, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long n;

    if (!isdigit((unsigned char)v[0]))
        return "must be a non-negative integer";
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0')
        return "must be a non-negative integer";
    if (n < min || n > max) {
        static _Thread_local char msg[64];
        snprintf(msg, sizeof(msg), "is out of range (%lld to %lld)", min, max);
        return msg;
    }
    *out = n;
    return NULL;
}

static const char *parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on")) {
        *out = true;
        return NULL;
    }
    if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off")) {
        *out = false;
        return NULL;
    }
    return "must be yes or no";
}

/* Letters, digits, '-' and '.', with a dot (or "localhost"): what may
 * follow the '@' of a Medplum login email. */
static bool is_domain(const char *v)
{
    size_t len = strlen(v);

    if (len == 0 || len > 253 || v[0] == '.' || v[0] == '-' || v[len - 1] == '.')
        return false;
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return false;
    return strchr(v, '.') != NULL || strcmp(v, "localhost") == 0;
}

static const char *check_url(const char *v)
{
    const char *host;

    if (strncmp(v, "https://", 8) == 0)
        host = v + 8;
    else if (strncmp(v, "http://", 7) == 0)
        host = v + 7;
    else
        return "must start with https://";
    if (*host == '\0' || *host == '/' || strpbrk(v, " \t\"'\\#?@") != NULL)
        return "is not a valid server URL (no credentials, query or fragment)";
    return NULL;
}

static bool is_resource_type(const char *s, size_t n)
{
    if (n == 0 || n > 64 || !isupper((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalpha((unsigned char)s[i]))
            return false;
    return true;
}

static const char *check_source(const char *v, const char *plain)
{
    if (!strcmp(v, plain))
        return NULL;
    if (strncmp(v, "identifier:", 11) == 0 && v[11] != '\0' && strpbrk(v, " \t|") == NULL)
        return NULL;
    return "must be the default or identifier:<system>";
}

static const char *check_home(const char *v)
{
    if (v[0] != '/')
        return "must be an absolute path";
    for (const char *p = strchr(v, '%'); p; p = strchr(p + 2, '%'))
        if (p[1] != 'u' && p[1] != '%')
            return "only %u (user name) and %% are allowed";
    if (strstr(v, "/../") || strchr(v, ':'))
        return "must not contain '..' components or ':'";
    return NULL;
}

static void free_types(struct mp_config *cfg)
{
    for (size_t i = 0; i < MP_MAX_PROFILE_TYPES; i++) {
        free(cfg->allowed_profile_types[i]);
        cfg->allowed_profile_types[i] = NULL;
    }
}

static const char *set_types(struct mp_config *cfg, const char *v)
{
    char *copy[MP_MAX_PROFILE_TYPES] = {0};
    size_t n = 0;
    const char *p = v;

    while (*p) {
        size_t len = strcspn(p, ",");
        const char *s = p;
        size_t l = len;
        while (l && isspace((unsigned char)*s)) {
            s++;
            l--;
        }
        while (l && isspace((unsigned char)s[l - 1]))
            l--;
        if (!is_resource_type(s, l) || n == MP_MAX_PROFILE_TYPES) {
            for (size_t i = 0; i < n; i++)
                free(copy[i]);
            return n == MP_MAX_PROFILE_TYPES ? "lists too many types"
                                             : "must be a comma list of FHIR resource types";
        }
        copy[n] = strndup(s, l);
        if (copy[n] == NULL) {
            for (size_t i = 0; i < n; i++)
                free(copy[i]);
            return "out of memory";
        }
        n++;
        p += len;
        if (*p == ',')
            p++;
    }
    if (n == 0)
        return "must name at least one resource type";
    free_types(cfg);
    memcpy(cfg->allowed_profile_types, copy, sizeof(copy));
    return NULL;
}

static const char *set_string(char **field, const char *v, bool secret)
{
    char *dup = strdup(v);

    if (dup == NULL)
        return "out of memory";
    if (secret)
        mp_secret_free(*field);
    else
        free(*field);
    *field = dup;
    return NULL;
}

static const char *apply(struct mp_config *cfg, const struct key_def *k, const char *v)
{
    void *field = (char *)cfg + k->offset;
    long long n = 0;
    const char *err;

    if (has_control_chars(v))
        return "contains control characters";
    /* "key = value  # note" would silently keep the note in the value. */
    if (k->type != T_SECRET && strstr(v, " #") != NULL)
        return "has a trailing comment; put comments on their own line";
    switch (k->type) {
    case T_STRING:
        return set_string(field, v, false);
    case T_URL:
        if ((err = check_url(v)) != NULL)
            return err;
        {
            size_t len = strlen(v);
            char *norm = malloc(len + 2);
            if (norm == NULL)
                return "out of memory";
            memcpy(norm, v, len + 1);
            if (len == 0 || v[len - 1] != '/')
                strcat(norm, "/");
            free(*(char **)field);
            *(char **)field = norm;
        }
        return NULL;
    case T_UUID:
        if (!mp_is_uuid(v))
            return "must be a Medplum id (UUID)";
        return set_string(field, v, false);
    case T_PATH:
        if (v[0] != '/')
            return "must be an absolute path";
        return set_string(field, v, false);
    case T_SHELL:
        if (v[0] != '/' || strpbrk(v, ": \t") != NULL)
            return "must be an absolute path without ':' or spaces";
        return set_string(field, v, false);
    case T_DOMAIN:
        if (!is_domain(v))
            return "must be a domain name such as lab.example.org (no '@', quotes or spaces)";
        return set_string(field, v, false);
    case T_HOME:
        if ((err = check_home(v)) != NULL)
            return err;
        return set_string(field, v, false);
    case T_SECONDS:
        if ((err = parse_number(v, k->min, k->max, &n)) != NULL)
            return err;
        *(long *)field = (long)n;
        return NULL;
    case T_UINT:
        if ((err = parse_number(v, k->min, k->max, &n)) != NULL)
            return err;
        *(unsigned long *)field = (unsigned long)n;
        return NULL;
    case T_BOOL:
        return parse_bool(v, field);
    case T_TYPES:
        return set_types(cfg, v);
    case T_HOSTAUTH:
        if (!strcmp(v, "client_credentials"))
            *(enum mp_host_auth *)field = MP_HOST_AUTH_CLIENT_CREDENTIALS;
        else if (!strcmp(v, "basic"))
            *(enum mp_host_auth *)field = MP_HOST_AUTH_BASIC;
        else
            return "must be client_credentials or basic";
        return NULL;
    case T_UNKNOWN_POLICY:
        if (!strcmp(v, "deny"))
            *(enum mp_account_unknown *)field = MP_ACCOUNT_UNKNOWN_DENY;
        else if (!strcmp(v, "allow"))
            *(enum mp_account_unknown *)field = MP_ACCOUNT_UNKNOWN_ALLOW;
        else
            return "must be deny or allow";
        return NULL;
    case T_SOURCE:
        if ((err = check_source(v, "email")) != NULL)
            return err;
        return set_string(field, v, false);
    case T_UIDSRC:
        if ((err = check_source(v, "hash")) != NULL)
            return err;
        return set_string(field, v, false);
    case T_GROUP:
        if (strcmp(v, "private") != 0 && !mp_is_valid_username(v))
            return "must be private or a valid group name";
        return set_string(field, v, false);
    case T_GROUPNAME:
        if (!mp_is_valid_username(v))
            return "must be a valid group name";
        return set_string(field, v, false);
    case T_SECRET:
        if (strlen(v) < 16)
            return "is too short to be a client secret";
        return set_string(field, v, true);
    }
    return "has an unsupported type";
}

static const struct key_def *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].key, name))
            return &keys[i];
    return NULL;
}

int mp_config_init(struct mp_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].default_text == NULL)
            continue;
        if (apply(cfg, &keys[i], keys[i].default_text) != NULL)
            return -1;
    }
    return 0;
}

void mp_config_free(struct mp_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        void *field = (char *)cfg + keys[i].offset;
        switch (keys[i].type) {
        case T_SECRET:
            mp_secret_clear(field);
            break;
        case T_STRING:
        case T_DOMAIN:
        case T_URL:
        case T_UUID:
        case T_PATH:
        case T_SHELL:
        case T_HOME:
        case T_SOURCE:
        case T_UIDSRC:
        case T_GROUP:
        case T_GROUPNAME:
            free(*(char **)field);
            *(char **)field = NULL;
            break;
        default:
            break;
        }
    }
    free_types(cfg);
    free(cfg->path);
    cfg->path = NULL;
}

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* Cross-key rules, checked once the whole file is read. */
static int check_semantics(const struct mp_config *cfg, const char *name, const bool *seen,
                           const mp_logger *log)
{
    int problems = 0;

    /* A required key given with a bad value was reported on its own line. */
    if (cfg->base_url == NULL) {
        if (!seen[find_key("base_url") - keys]) {
            mp_log(log, LOG_ERR, "%s: required key base_url is missing", name);
            problems++;
        }
    } else if (strncmp(cfg->base_url, "http://", 7) == 0) {
        if (!cfg->allow_insecure_http) {
            mp_log(log, LOG_ERR,
                   "%s: base_url uses plain http; set allow_insecure_http = yes "
                   "(loopback only) or use https",
                   name);
            problems++;
        } else if (!mp_url_host_is_loopback(cfg->base_url)) {
            mp_log(log, LOG_ERR, "%s: plain http is only allowed for a loopback base_url", name);
            problems++;
        }
    }
    if (cfg->project_id == NULL && !seen[find_key("project_id") - keys]) {
        mp_log(log, LOG_ERR, "%s: required key project_id is missing", name);
        problems++;
    }
    if (cfg->uid_min > cfg->uid_max) {
        mp_log(log, LOG_ERR, "%s: uid_min is greater than uid_max", name);
        problems++;
    }
    if (cfg->host_client_secret != NULL && cfg->host_client_secret_file != NULL) {
        mp_log(log, LOG_ERR, "%s: set host_client_secret or host_client_secret_file, not both",
               name);
        problems++;
    }
    if (cfg->primary_group && strcmp(cfg->primary_group, "private") != 0 && cfg->primary_gid == 0) {
        mp_log(log, LOG_ERR, "%s: primary_group %s needs primary_gid", name, cfg->primary_group);
        problems++;
    }
    if (cfg->admin_group != NULL && cfg->admin_gid == 0) {
        mp_log(log, LOG_ERR, "%s: admin_group %s needs admin_gid", name, cfg->admin_group);
        problems++;
    }
    if (cfg->offline_backoff > cfg->offline_backoff_max) {
        mp_log(log, LOG_ERR, "%s: offline_backoff is greater than offline_backoff_max", name);
        problems++;
    }
    return problems;
}

int mp_config_parse(struct mp_config *cfg, const char *name, const char *text, const mp_logger *log)
{
    bool seen[NKEYS] = {false};
    int problems = 0;
    unsigned lineno = 0;
    char *copy = strdup(text);
    char *save = NULL;
    char *line;

    if (copy == NULL) {
        mp_log(log, LOG_ERR, "%s: out of memory", name);
        return 1;
    }
    free(cfg->path);
    cfg->path = strdup(name);
    cfg->parsed = true;
    /* strsep keeps empty lines, so line numbers stay right. */
    save = copy;
    while ((line = strsep(&save, "\n")) != NULL) {
        char *eq, *key, *value;
        const struct key_def *k;
        const char *err;

        lineno++;
        key = trim(line);
        if (*key == '\0' || *key == '#')
            continue;
        eq = strchr(key, '=');
        if (eq == NULL) {
            mp_log(log, LOG_ERR, "%s:%u: expected 'key = value'", name, lineno);
            problems++;
            continue;
        }
        *eq = '\0';
        key = trim(key);
        value = trim(eq + 1);
        k = find_key(key);
        if (k == NULL) {
            mp_log(log, LOG_ERR, "%s:%u: unknown key '%.64s'", name, lineno, key);
            problems++;
            continue;
        }
        if (seen[k - keys]) {
            mp_log(log, LOG_ERR, "%s:%u: %s is set twice", name, lineno, k->key);
            problems++;
            continue;
        }
        seen[k - keys] = true;
        if (*value == '\0') {
            mp_log(log, LOG_ERR, "%s:%u: %s has no value", name, lineno, k->key);
            problems++;
            continue;
        }
        err = apply(cfg, k, value);
        if (err != NULL) {
            /* Never echo a secret's value. */
            if (k->type == T_SECRET)
                mp_log(log, LOG_ERR, "%s:%u: %s %s", name, lineno, k->key, err);
            else
                mp_log(log, LOG_ERR, "%s:%u: %s %s (value '%.128s')", name, lineno, k->key, err,
                       value);
            problems++;
        }
    }
    mp_freezero(copy, strlen(text));
    return problems + check_semantics(cfg, name, seen, log);
}

bool mp_url_host_is_loopback(const char *url)
{
    const char *host, *end;
    char buf[64];
    struct in_addr a4;
    struct in6_addr a6;
    size_t len;

    host = strstr(url, "://");
    if (host == NULL)
        return false;
    host += 3;
    if (*host == '[') {
        host++;
        end = strchr(host, ']');
    } else {
        end = host + strcspn(host, ":/");
    }
    if (end == NULL)
        return false;
    len = (size_t)(end - host);
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (!strcasecmp(buf, "localhost"))
        return true;
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, buf, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

int mp_check_file_security(int fd, const char *what, bool secret, const mp_logger *log)
{
    struct stat st;

    if (fstat(fd, &st) != 0) {
        mp_log(log, LOG_ERR, "%s: cannot stat: %s", what, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        mp_log(log, LOG_ERR, "%s: not a regular file", what);
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        mp_log(log, LOG_ERR, "%s: owned by uid %u, must be owned by root", what,
               (unsigned)st.st_uid);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        mp_log(log, LOG_ERR, "%s: writable by group or others (mode %04o)", what,
               (unsigned)(st.st_mode & 07777));
        return -1;
    }
    if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
        mp_log(log, LOG_ERR,
               "%s: holds a secret but is accessible by group or others "
               "(mode %04o, must be 0600)",
               what, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return 0;
}

/* Reads a whole small file opened with O_NOFOLLOW; returns malloc'd text. */
static char *read_small_file(const char *path, bool secret, int *fd_out, const mp_logger *log,
                             int *problems)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    char *buf = NULL;
    size_t len = 0;

    *fd_out = -1;
    if (fd < 0) {
        mp_log(log, LOG_ERR, "%s: cannot open: %s", path,
               errno == ELOOP ? "it is a symbolic link (give the file itself)" : strerror(errno));
        (*problems)++;
        return NULL;
    }
    if (mp_check_file_security(fd, path, secret, log) != 0) {
        (*problems)++;
        close(fd);
        return NULL;
    }
    buf = malloc(MP_CONFIG_MAX_SIZE + 1);
    if (buf == NULL) {
        (*problems)++;
        close(fd);
        return NULL;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, MP_CONFIG_MAX_SIZE + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            mp_log(log, LOG_ERR, "%s: read error: %s", path, strerror(errno));
            (*problems)++;
            mp_freezero(buf, MP_CONFIG_MAX_SIZE + 1);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > MP_CONFIG_MAX_SIZE) {
            mp_log(log, LOG_ERR, "%s: larger than %d bytes", path, MP_CONFIG_MAX_SIZE);
            (*problems)++;
            mp_freezero(buf, MP_CONFIG_MAX_SIZE + 1);
            close(fd);
            return NULL;
        }
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        mp_log(log, LOG_ERR, "%s: contains a NUL byte", path);
        (*problems)++;
        mp_freezero(buf, MP_CONFIG_MAX_SIZE + 1);
        close(fd);
        return NULL;
    }
    *fd_out = fd;
    return buf;
}

int mp_config_load(struct mp_config *cfg, const char *path, const mp_logger *log)
{
    int problems = 0;
    int fd = -1;
    char *text = read_small_file(path, false, &fd, log, &problems);

    if (text == NULL) {
        free(cfg->path);
        cfg->path = strdup(path);
        return problems ? problems : 1;
    }
    problems += mp_config_parse(cfg, path, text, log);
    if (cfg->host_client_secret != NULL && mp_check_file_security(fd, path, true, log) != 0)
        problems++;
    close(fd);
    mp_freezero(text, MP_CONFIG_MAX_SIZE + 1);
    return problems;
}

int mp_config_host_secret(const struct mp_config *cfg, char **secret, const mp_logger *log)
{
    int problems = 0;
    int fd = -1;
    char *text, *s;

    *secret = NULL;
    if (cfg->host_client_secret != NULL) {
        *secret = strdup(cfg->host_client_secret);
        return *secret ? 0 : -1;
    }
    if (cfg->host_client_secret_file == NULL) {
        mp_log(log, LOG_ERR, "%s: host_client_secret_file is not set", cfg->path);
        return -1;
    }
    text = read_small_file(cfg->host_client_secret_file, true, &fd, log, &problems);
    if (text == NULL)
        return -1;
    close(fd);
    s = trim(text);
    if (strlen(s) < 16 || has_control_chars(s) || strchr(s, ':')) {
        mp_log(log, LOG_ERR,
               "%s: does not hold a client secret (one line of at least 16 characters, "
               "no ':' or control characters)",
               cfg->host_client_secret_file);
        mp_freezero(text, MP_CONFIG_MAX_SIZE + 1);
        return -1;
    }
    *secret = strdup(s);
    mp_freezero(text, MP_CONFIG_MAX_SIZE + 1);
    return *secret ? 0 : -1;
}

bool mp_config_profile_type_allowed(const struct mp_config *cfg, const char *type)
{
    for (size_t i = 0; i < MP_MAX_PROFILE_TYPES && cfg->allowed_profile_types[i]; i++)
        if (!strcmp(cfg->allowed_profile_types[i], type))
            return true;
    return false;
}
