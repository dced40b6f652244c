/* group database: getgrnam_r, getgrgid_r, enumeration and initgroups_dyn. */
#include "nss_medplum.h"

#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

pthread_mutex_t nss_grent_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nss_map *grent_map;
static uint32_t grent_next;

static int group_allowed(const struct mpc_group *g)
{
    return g->gid != 0 && strcmp(g->name, "root") != 0;
}

/* Layout in buf: padding to pointer alignment, gr_mem array (count + 1
 * pointers), then the strings.  Sizes are computed before anything is
 * written, so a short buffer is left untouched. */
static enum nss_status fill_group(const struct mpc_view *v, const struct mpc_group *g,
                                  struct group *gr, char *buf, size_t buflen, int *errnop)
{
    size_t pad, need, used;
    const char *m;
    char **mem;

    if (buf == NULL)
        goto erange;
    pad = (alignof(char *) - (uintptr_t)buf % alignof(char *)) % alignof(char *);
    /* count <= file size / 4, so this cannot overflow */
    need = pad + ((size_t)g->count + 1) * sizeof(char *) + strlen(g->name) + 1 +
           sizeof(NSS_NO_PASSWORD);
    for (uint32_t j = 0; j < g->count; j++) {
        if (mpc_group_member(v, g, j, &m) != MPC_FOUND)
            return nss_lookup_status(MPC_CORRUPT, errnop);
        need += strlen(m) + 1;
        if (need > buflen)
            goto erange;
    }
    if (need > buflen)
        goto erange;
    mem = (char **)(void *)(buf + pad);
    used = pad + ((size_t)g->count + 1) * sizeof(char *);
    gr->gr_name = nss_copy_str(buf, &used, g->name);
    gr->gr_passwd = nss_copy_str(buf, &used, NSS_NO_PASSWORD);
    for (uint32_t j = 0; j < g->count; j++) {
        mpc_group_member(v, g, j, &m); /* checked above */
        mem[j] = nss_copy_str(buf, &used, m);
    }
    mem[g->count] = NULL;
    gr->gr_mem = mem;
    gr->gr_gid = g->gid;
    return NSS_STATUS_SUCCESS;
erange:
    *errnop = ERANGE;
    return NSS_STATUS_TRYAGAIN;
}

static enum nss_status answer(const struct mpc_view *v, int r, const struct mpc_group *g,
                              struct group *gr, char *buf, size_t buflen, int *errnop)
{
    if (r == MPC_FOUND && !group_allowed(g))
        r = MPC_NOTFOUND;
    if (r != MPC_FOUND)
        return nss_lookup_status(r, errnop);
    return fill_group(v, g, gr, buf, buflen, errnop);
}

NSS_EXPORT enum nss_status _nss_medplum_getgrnam_r(const char *name, struct group *gr, char *buf,
                                                   size_t buflen, int *errnop)
{
    enum nss_status status = NSS_STATUS_UNAVAIL;
    struct nss_map *m;
    struct mpc_group g;

    if (name == NULL) {
        *errnop = ENOENT;
        return NSS_STATUS_NOTFOUND;
    }
    m = nss_map_acquire(&status, errnop);
    if (m == NULL)
        return status;
    status = answer(&m->view, mpc_group_by_name(&m->view, name, &g), &g, gr, buf, buflen, errnop);
    nss_map_release(m);
    return status;
}

NSS_EXPORT enum nss_status _nss_medplum_getgrgid_r(gid_t gid, struct group *gr, char *buf,
                                                   size_t buflen, int *errnop)
{
    enum nss_status status = NSS_STATUS_UNAVAIL;
    struct nss_map *m = nss_map_acquire(&status, errnop);
    struct mpc_group g;

    if (m == NULL)
        return status;
    status = answer(&m->view, mpc_group_by_gid(&m->view, (uint32_t)gid, &g), &g, gr, buf, buflen,
                    errnop);
    nss_map_release(m);
    return status;
}

NSS_EXPORT enum nss_status _nss_medplum_setgrent(int stayopen)
{
    (void)stayopen;
    pthread_mutex_lock(&nss_grent_lock);
    nss_map_release(grent_map);
    grent_map = NULL;
    grent_next = 0;
    pthread_mutex_unlock(&nss_grent_lock);
    return NSS_STATUS_SUCCESS;
}

NSS_EXPORT enum nss_status _nss_medplum_endgrent(void)
{
    return _nss_medplum_setgrent(0);
}

NSS_EXPORT enum nss_status _nss_medplum_getgrent_r(struct group *gr, char *buf, size_t buflen,
                                                   int *errnop)
{
    enum nss_status status = NSS_STATUS_UNAVAIL;
    struct mpc_group g;

    pthread_mutex_lock(&nss_grent_lock);
    if (grent_map == NULL)
        grent_map = nss_map_acquire(&status, errnop);
    if (grent_map == NULL)
        goto out;
    status = NSS_STATUS_NOTFOUND;
    *errnop = ENOENT;
    while (grent_next < grent_map->view.ngroups) {
        if (mpc_group_at(&grent_map->view, grent_next, &g) != MPC_FOUND) {
            status = nss_lookup_status(MPC_CORRUPT, errnop);
            break;
        }
        if (!group_allowed(&g)) {
            grent_next++;
            continue;
        }
        status = fill_group(&grent_map->view, &g, gr, buf, buflen, errnop);
        if (status == NSS_STATUS_SUCCESS)
            grent_next++; /* not on ERANGE: the retry must get this entry */
        break;
    }
out:
    pthread_mutex_unlock(&nss_grent_lock);
    return status;
}

/* ---- initgroups ------------------------------------------------------------ */

static int have_gid(const gid_t *groups, long n, gid_t gid)
{
    for (long i = 0; i < n; i++)
        if (groups[i] == gid)
            return 1;
    return 0;
}

/* Appends gid to the caller's (glibc's) malloc'd array, growing it up to
 * limit (<= 0: unlimited).  Returns 0, 1 when full, -1 on ENOMEM. */
static int add_gid(gid_t gid, long *start, long *size, gid_t **groupsp, long limit)
{
    if (*start >= *size) {
        long nsize = *size > 0 ? *size * 2 : 16;
        gid_t *grown;
        if (limit > 0 && *size >= limit)
            return 1;
        if (limit > 0 && nsize > limit)
            nsize = limit;
        grown = realloc(*groupsp, (size_t)nsize * sizeof(gid_t));
        if (grown == NULL)
            return -1;
        *groupsp = grown;
        *size = nsize;
    }
    (*groupsp)[(*start)++] = gid;
    return 0;
}

NSS_EXPORT enum nss_status _nss_medplum_initgroups_dyn(const char *user, gid_t group,
                                                       long int *start, long int *size,
                                                       gid_t **groupsp, long int limit, int *errnop)
{
    enum nss_status status = NSS_STATUS_UNAVAIL;
    struct nss_map *m = NULL;
    struct mpc_group g;
    uint32_t first, count;
    int r;

    if (user == NULL) {
        *errnop = ENOENT;
        return NSS_STATUS_NOTFOUND;
    }
    m = nss_map_acquire(&status, errnop);
    if (m == NULL)
        return status;
    r = mpc_member_groups(&m->view, user, &first, &count);
    if (r != MPC_FOUND) {
        status = nss_lookup_status(r, errnop);
        goto out;
    }
    status = NSS_STATUS_SUCCESS;
    for (uint32_t k = 0; k < count; k++) {
        if (mpc_member_group_at(&m->view, first + k, &g) != MPC_FOUND) {
            status = nss_lookup_status(MPC_CORRUPT, errnop);
            break;
        }
        if (!group_allowed(&g) || g.gid == group || have_gid(*groupsp, *start, g.gid))
            continue;
        r = add_gid(g.gid, start, size, groupsp, limit);
        if (r > 0)
            break;
        if (r < 0) {
            *errnop = ENOMEM;
            status = NSS_STATUS_TRYAGAIN;
            break;
        }
    }
out:
    nss_map_release(m);
    return status;
}
