/*
 * The process-wide mapping of accounts.db.
 *
 * Kept between calls and revalidated with one stat() per call: a replaced
 * file (new inode, size, mtime or ctime, owner or mode) is mapped afresh on
 * the next call.  Lookups hold a reference while they copy out of the
 * mapping, so the lock only covers the bookkeeping, and a replaced mapping
 * is unmapped when its last reader is done.  No descriptor stays open.
 */
#include "nss_medplum.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef MP_DEFAULT_CACHE_DIR
#define MP_DEFAULT_CACHE_DIR "/var/lib/pam_medplum"
#endif

static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nss_map *current;    /* NULL until the first good map */
static struct nss_map *stale_list; /* replaced, still referenced */

/* Build-time location; tests may redirect it.  secure_getenv returns NULL
 * in setuid/setgid programs, so users cannot point su at their own file. */
static const char *cache_dir(void)
{
    const char *d = secure_getenv("NSS_MEDPLUM_CACHE_DIR");

    return d != NULL && d[0] == '/' ? d : MP_DEFAULT_CACHE_DIR;
}

static void map_free(struct nss_map *m)
{
    mpc_file_close(&m->file);
    free(m);
}

/* Called with map_lock held. */
static void retire(struct nss_map *m)
{
    if (m == NULL)
        return;
    if (m->refs == 0) {
        map_free(m);
        return;
    }
    m->stale = 1;
    m->next_stale = stale_list;
    stale_list = m;
}

/* Called with map_lock held. */
static struct nss_map *map_open(const char *dir, enum nss_status *status, int *errnop)
{
    char why[MPC_WHY_LEN];
    struct nss_map *m = calloc(1, sizeof(*m));
    int r;

    if (m == NULL) {
        *status = NSS_STATUS_TRYAGAIN;
        *errnop = ENOMEM;
        return NULL;
    }
    snprintf(m->dir, sizeof(m->dir), "%s", dir);
    r = mpc_file_open(dir, &m->file, &m->view, why, sizeof(why));
    if (r != MPC_OPEN_OK) {
        nss_log("cache %s unavailable: %s", dir, why);
        free(m);
        *status = NSS_STATUS_UNAVAIL;
        *errnop = r == MPC_OPEN_MISSING ? ENOENT : EIO;
        return NULL;
    }
    return m;
}

struct nss_map *nss_map_acquire(enum nss_status *status, int *errnop)
{
    const char *dir = cache_dir();
    char path[sizeof(((struct nss_map *)0)->dir) + sizeof(MPC_FILE_NAME) + 1];
    struct stat st;
    struct nss_map *m = NULL;
    int have_st;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, MPC_FILE_NAME) >= sizeof(path) - 1) {
        *status = NSS_STATUS_UNAVAIL;
        *errnop = ENAMETOOLONG;
        return NULL;
    }
    /* stat outside the lock: lookups in other threads need not wait on it */
    have_st = stat(path, &st) == 0;
    pthread_mutex_lock(&map_lock);
    if (current != NULL && have_st && strcmp(current->dir, dir) == 0 &&
        mpc_file_unchanged(&current->file, &st)) {
        m = current;
    } else {
        retire(current);
        current = map_open(dir, status, errnop);
        m = current;
    }
    if (m != NULL)
        m->refs++;
    pthread_mutex_unlock(&map_lock);
    return m;
}

void nss_map_release(struct nss_map *m)
{
    struct nss_map **p;

    if (m == NULL)
        return;
    pthread_mutex_lock(&map_lock);
    if (--m->refs == 0 && m->stale) {
        for (p = &stale_list; *p != NULL; p = &(*p)->next_stale) {
            if (*p == m) {
                *p = m->next_stale;
                break;
            }
        }
        map_free(m);
    }
    pthread_mutex_unlock(&map_lock);
}

/* ---- fork and unload ----------------------------------------------------- */

static void prepare_fork(void)
{
    pthread_mutex_lock(&nss_pwent_lock);
    pthread_mutex_lock(&nss_grent_lock);
    pthread_mutex_lock(&map_lock);
    pthread_mutex_lock(&nss_log_lock);
}

static void after_fork(void)
{
    pthread_mutex_unlock(&nss_log_lock);
    pthread_mutex_unlock(&map_lock);
    pthread_mutex_unlock(&nss_grent_lock);
    pthread_mutex_unlock(&nss_pwent_lock);
}

/* A fork while another thread is inside the module must not leave the
 * child with a lock nobody will release. */
__attribute__((constructor)) static void nss_medplum_init(void)
{
    pthread_atfork(prepare_fork, after_fork, after_fork);
}

/* On dlclose (glibc only unloads NSS modules at exit under valgrind/freeres)
 * drop the mapping if no lookup holds it. */
__attribute__((destructor)) static void nss_medplum_fini(void)
{
    pthread_mutex_lock(&map_lock);
    if (current != NULL && current->refs == 0) {
        map_free(current);
        current = NULL;
    }
    pthread_mutex_unlock(&map_lock);
}
