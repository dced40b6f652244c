/*
 * mp_idmap_record_login: pam_medplum's "make sure I have an entry" after a
 * successful login, so a first console login works before any sync.  The
 * uid follows the same rules as the sync (reservation, else the hash probe),
 * so the sync later keeps it.
 */
#include "mp_idmap.h"

#include <stdio.h>
#include <string.h>

#include "mp_account.h"
#include "mp_validate.h"

static bool same(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* uid for the profile: its reservation, else the first free probe. */
static int choose_uid(const struct mp_config *cfg, const struct mp_cache_data *d,
                      const struct mp_localdb *local, const char *profile, uint32_t *uid)
{
    const char *pid = profile + strlen("Practitioner/");
    uint64_t n = (uint64_t)cfg->uid_max - cfg->uid_min + 1;

    for (size_t i = 0; i < d->nreservations; i++) {
        if (same(d->reservations[i].profile, profile)) {
            *uid = d->reservations[i].uid;
            return mp_localdb_has_id(local, *uid) ? -1 : 0;
        }
    }
    for (uint64_t k = 0; k < n; k++) {
        uint32_t u = mp_idmap_uid_probe(pid, (uint32_t)cfg->uid_min, (uint32_t)cfg->uid_max, k);
        bool taken = u == 65534 || u == 65535 || mp_localdb_has_id(local, u) ||
                     (cfg->admin_group != NULL && u == cfg->admin_gid) ||
                     (strcmp(cfg->primary_group, "private") != 0 && u == cfg->primary_gid);
        for (size_t i = 0; i < d->nreservations && !taken; i++)
            taken = d->reservations[i].uid == u;
        for (size_t i = 0; i < d->nusers && !taken; i++)
            taken = d->users[i].uid == u || d->users[i].gid == u;
        for (size_t i = 0; i < d->ngroups && !taken; i++)
            taken = d->groups[i].gid == u;
        if (!taken) {
            *uid = u;
            return 0;
        }
    }
    return -1;
}

static int fill_entry(const struct mp_config *cfg, struct mp_cache_user *u, const char *username,
                      const char *email, const char *profile, const char *display, uint32_t uid,
                      char *gecos, char *home, size_t home_len)
{
    bool private_group = strcmp(cfg->primary_group, "private") == 0;

    mp_idmap_gecos(display, gecos, MP_GECOS_MAX + 1);
    if (mp_idmap_home(cfg->home_template, username, home, home_len) != 0)
        return -1;
    memset(u, 0, sizeof(*u));
    u->name = (char *)username;
    u->uid = uid;
    u->gid = private_group ? uid : (uint32_t)cfg->primary_gid;
    u->gecos = gecos;
    u->home = home;
    u->shell = cfg->shell;
    u->email = (char *)email;
    u->profile = (char *)profile;
    return 0;
}

int mp_idmap_record_login_files(const struct mp_config *cfg, const char *username,
                                const char *email, const char *profile, const char *display,
                                const char *passwd_path, const char *group_path,
                                const mp_logger *log)
{
    struct mp_cache_data d = {0};
    struct mp_localdb local = {0};
    const struct mp_cache_user *have;
    struct mp_cache_user u;
    char gecos[MP_GECOS_MAX + 1], home[4096];
    uint32_t uid = 0;
    int ret = -1;

    if (!mp_is_valid_username(username) || email == NULL || profile == NULL ||
        strncmp(profile, "Practitioner/", 13) != 0 || !mp_is_uuid(profile + 13)) {
        mp_log(log, LOG_ERR, "idmap: not recording %s: needs a valid name and a Practitioner",
               username ? username : "(null)");
        return -1;
    }
    if (strncmp(cfg->uid_source, "identifier:", 11) == 0) {
        mp_log(log, LOG_DEBUG, "idmap: uid_source pins uids; %s waits for medplumctl sync",
               username);
        return 0;
    }
    if (mp_cache_load(cfg->cache_dir, &d, log) != 0 ||
        mp_localdb_load(&local, passwd_path, group_path, log) != 0)
        goto out;
    have = mp_cache_find_user(&d, username);
    if (have != NULL) {
        ret = same(have->profile, profile) ? 0 : -1;
        if (ret != 0)
            mp_log(log, LOG_ERR, "idmap: %s is bound to another Practitioner in the cache",
                   username);
        goto out;
    }
    for (size_t i = 0; i < d.nusers; i++) {
        if (same(d.users[i].profile, profile)) {
            /* Renaming a synced account after every login under another
             * name would make the two fight; the sync's name stays. */
            mp_log(log, LOG_INFO, "idmap: %s already has the account %s; not adding %s", profile,
                   d.users[i].name, username);
            ret = 0;
            goto out;
        }
    }
    if (mp_localdb_has_user(&local, username) || mp_localdb_has_group(&local, username)) {
        mp_log(log, LOG_ERR, "idmap: not recording %s: the name is a local account or group",
               username);
        goto out;
    }
    if (choose_uid(cfg, &d, &local, profile, &uid) != 0) {
        mp_log(log, LOG_ERR, "idmap: no usable uid for %s in %lu..%lu", username, cfg->uid_min,
               cfg->uid_max);
        goto out;
    }
    if (fill_entry(cfg, &u, username, email, profile, display, uid, gecos, home, sizeof(home)) != 0)
        goto out;
    /* upsert re-checks every conflict under the lock: a sync that took the
     * uid meanwhile makes it refuse rather than collide. */
    ret = mp_cache_upsert_user(cfg->cache_dir, &u, log);
    if (ret == 0)
        mp_log(log, LOG_INFO, "idmap: recorded %s as uid %u (%s)", username, (unsigned)uid,
               profile);
out:
    mp_cache_data_free(&d);
    mp_localdb_free(&local);
    return ret;
}

int mp_idmap_record_login(const struct mp_config *cfg, const char *username, const char *email,
                          const char *profile, const char *display, const mp_logger *log)
{
    return mp_idmap_record_login_files(cfg, username, email, profile, display, MP_PASSWD_FILE,
                                       MP_GROUP_FILE, log);
}
