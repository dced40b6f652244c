/* passwd database: getpwnam_r, getpwuid_r and enumeration. */
#include "nss_medplum.h"

#include <errno.h>
#include <string.h>

pthread_mutex_t nss_pwent_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nss_map *pwent_map; /* snapshot held from first getpwent_r to endpwent */
static uint32_t pwent_next;

/* Defence in depth: the writer refuses these, but a module answering for
 * root would be a disaster, so the reader refuses them too. */
static int user_allowed(const struct mpc_user *u)
{
    return u->uid != 0 && u->gid != 0 && strcmp(u->name, "root") != 0;
}

/* Copies u into pw/buf, or returns TRYAGAIN/ERANGE without writing a byte
 * when buf is too small (the caller retries with a bigger one). */
static enum nss_status fill_passwd(const struct mpc_user *u, struct passwd *pw, char *buf,
                                   size_t buflen, int *errnop)
{
    const char *gecos = u->gecos ? u->gecos : "", *home = u->home ? u->home : "";
    const char *shell = u->shell ? u->shell : "";
    size_t need = strlen(u->name) + 1 + sizeof(NSS_NO_PASSWORD) + strlen(gecos) + 1 + strlen(home) +
                  1 + strlen(shell) + 1;
    size_t used = 0;

    if (buf == NULL || need > buflen) {
        *errnop = ERANGE;
        return NSS_STATUS_TRYAGAIN;
    }
    pw->pw_name = nss_copy_str(buf, &used, u->name);
    pw->pw_passwd = nss_copy_str(buf, &used, NSS_NO_PASSWORD);
    pw->pw_gecos = nss_copy_str(buf, &used, gecos);
    pw->pw_dir = nss_copy_str(buf, &used, home);
    pw->pw_shell = nss_copy_str(buf, &used, shell);
    pw->pw_uid = u->uid;
    pw->pw_gid = u->gid;
    return NSS_STATUS_SUCCESS;
}

/* Common tail of the point lookups. */
static enum nss_status answer(int r, const struct mpc_user *u, struct passwd *pw, char *buf,
                              size_t buflen, int *errnop)
{
    if (r == MPC_FOUND && !user_allowed(u))
        r = MPC_NOTFOUND;
    if (r != MPC_FOUND)
        return nss_lookup_status(r, errnop);
    return fill_passwd(u, pw, buf, buflen, errnop);
}

NSS_EXPORT enum nss_status _nss_medplum_getpwnam_r(const char *name, struct passwd *pw, char *buf,
                                                   size_t buflen, int *errnop)
{
    enum nss_status status = NSS_STATUS_UNAVAIL;
    struct nss_map *m;
    struct mpc_user u;

    if (name == NULL) {
        *errnop = ENOENT;
        return NSS_STATUS_NOTFOUND;
    }
    m = nss_map_acquire(&status, errnop);
    if (m == NULL)
        return status;
    status = answer(mpc_user_by_name(&m->view, name, &u), &u, pw, buf, buflen, errnop);
    nss_map_release(m);
    return status;
}

NSS_EXPORT enum nss_status _nss_medplum_getpwuid_r(uid_t uid, struct passwd *pw, char *buf,
                                                   size_t buflen, int *errnop)
{
    enum nss_status status = NSS_STATUS_UNAVAIL;
    struct nss_map *m = nss_map_acquire(&status, errnop);
    struct mpc_user u;

    if (m == NULL)
        return status;
    status = answer(mpc_user_by_uid(&m->view, (uint32_t)uid, &u), &u, pw, buf, buflen, errnop);
    nss_map_release(m);
    return status;
}

NSS_EXPORT enum nss_status _nss_medplum_setpwent(int stayopen)
{
    (void)stayopen;
    pthread_mutex_lock(&nss_pwent_lock);
    nss_map_release(pwent_map);
    pwent_map = NULL;
    pwent_next = 0;
    pthread_mutex_unlock(&nss_pwent_lock);
    return NSS_STATUS_SUCCESS;
}

NSS_EXPORT enum nss_status _nss_medplum_endpwent(void)
{
    return _nss_medplum_setpwent(0);
}

NSS_EXPORT enum nss_status _nss_medplum_getpwent_r(struct passwd *pw, char *buf, size_t buflen,
                                                   int *errnop)
{
    enum nss_status status = NSS_STATUS_UNAVAIL;
    struct mpc_user u;

    pthread_mutex_lock(&nss_pwent_lock);
    if (pwent_map == NULL)
        pwent_map = nss_map_acquire(&status, errnop);
    if (pwent_map == NULL)
        goto out;
    status = NSS_STATUS_NOTFOUND;
    *errnop = ENOENT;
    while (pwent_next < pwent_map->view.nusers) {
        if (mpc_user_at(&pwent_map->view, pwent_next, &u) != MPC_FOUND) {
            status = nss_lookup_status(MPC_CORRUPT, errnop);
            break;
        }
        if (!user_allowed(&u)) {
            pwent_next++;
            continue;
        }
        status = fill_passwd(&u, pw, buf, buflen, errnop);
        if (status == NSS_STATUS_SUCCESS)
            pwent_next++; /* not on ERANGE: the retry must get this entry */
        break;
    }
out:
    pthread_mutex_unlock(&nss_pwent_lock);
    return status;
}
