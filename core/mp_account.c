#include "mp_account.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_cache.h"
#include "mp_validate.h"

int mp_passwd_file_lookup(const char *path, const char *username)
{
    FILE *fp = fopen(path, "re");
    struct passwd pw, *result = NULL;
    size_t size = 4096;
    char *buf = NULL, *grown;
    int ret = -1;

    if (fp == NULL)
        return -1;
    buf = malloc(size);
    if (buf == NULL)
        goto out;
    /* fgetpwent_r reads the file itself: asking NSS would ask us too.  A
     * line longer than the buffer is ERANGE: grow and read it again, never
     * stop early (a local account after it would look unknown). */
    for (;;) {
        long pos = ftell(fp);
        int rc = fgetpwent_r(fp, &pw, buf, size, &result);

        if (rc == ERANGE) {
            if (size >= 1024 * 1024 || pos < 0 || fseek(fp, pos, SEEK_SET) != 0)
                goto out;
            size *= 2;
            grown = realloc(buf, size);
            if (grown == NULL)
                goto out;
            buf = grown;
            continue;
        }
        if (rc == ENOENT) {
            ret = 0;
            goto out;
        }
        if (rc != 0)
            goto out;
        if (strcmp(pw.pw_name, username) == 0) {
            ret = 1;
            goto out;
        }
    }
out:
    free(buf);
    fclose(fp);
    return ret;
}

bool mp_passwd_file_has(const char *path, const char *username)
{
    return mp_passwd_file_lookup(path, username) != 0;
}

bool mp_account_is_foreign(const char *username, char *why, size_t why_len)
{
    if (!mp_is_valid_username(username)) {
        snprintf(why, why_len, "not a valid user name for Medplum mapping");
        return true;
    }
    switch (mp_passwd_file_lookup(MP_PASSWD_FILE, username)) {
    case 0:
        break;
    case 1:
        snprintf(why, why_len, "local account in %s", MP_PASSWD_FILE);
        return true;
    default:
        /* Unsure whether the name is local: never hand it to Medplum. */
        snprintf(why, why_len, "%s cannot be read completely", MP_PASSWD_FILE);
        return true;
    }
    return false;
}

int mp_account_resolve(const struct mp_config *cfg, const char *username, struct mp_account *out,
                       const mp_logger *log)
{
    struct mp_cache_data data = {0};
    const struct mp_cache_user *entry;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    out->kind = MP_ACCOUNT_NOT_OURS;
    if (mp_account_is_foreign(username, out->why, sizeof(out->why)))
        return 0;
    /* A corrupted cache fails closed: falling back to email_domain could
     * hand a bound name to another person's Medplum account. */
    if (mp_cache_load(cfg->cache_dir, &data, log) != 0) {
        snprintf(out->why, sizeof(out->why), "account cache in %s is unusable", cfg->cache_dir);
        goto out;
    }
    entry = mp_cache_find_user(&data, username);
    if (entry != NULL && entry->email != NULL && entry->profile != NULL) {
        out->in_cache = true;
        snprintf(out->email, sizeof(out->email), "%s", entry->email);
        snprintf(out->profile, sizeof(out->profile), "%s", entry->profile);
        out->kind = MP_ACCOUNT_MANAGED;
    } else if (cfg->email_domain != NULL) {
        snprintf(out->email, sizeof(out->email), "%s@%s", username, cfg->email_domain);
        out->kind = mp_is_plausible_email(out->email) ? MP_ACCOUNT_MANAGED : MP_ACCOUNT_NOT_OURS;
        if (out->kind == MP_ACCOUNT_NOT_OURS)
            snprintf(out->why, sizeof(out->why), "email_domain gives no valid email");
    } else {
        snprintf(out->why, sizeof(out->why), "not in the Medplum cache and no email_domain set");
    }
    ret = 0;
out:
    mp_cache_data_free(&data);
    return ret;
}
