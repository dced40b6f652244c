/*
 * libnss_medplum.so.2 internals.  The module answers passwd, group and
 * initgroups from the cache file only (mp_cache_reader.h); it links libc
 * alone and runs inside every process, setuid and multithreaded ones
 * included.
 */
#ifndef NSS_MEDPLUM_H
#define NSS_MEDPLUM_H

#include <grp.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <stddef.h>
#include <sys/types.h>

#include "mp_cache_reader.h"

#define NSS_EXPORT __attribute__((visibility("default")))

/*
 * pw_passwd/gr_passwd of every entry.  Not "x": that tells pam_unix and
 * friends to look in shadow, which this module does not provide, and
 * pam_unix's account phase then fails ("could not obtain user info").
 * "*" matches no crypt hash, so nothing can authenticate against it;
 * passwords are Medplum's business (pam_medplum).
 */
#define NSS_NO_PASSWORD "*"

/* One mapping of accounts.db, shared by every lookup in the process. */
struct nss_map {
    struct mpc_file file;
    struct mpc_view view;
    unsigned refs; /* lookups in flight plus enumerations holding it */
    int stale;     /* replaced: unmapped when refs drops to zero */
    struct nss_map *next_stale;
    char dir[4096];
};

/*
 * Returns the current mapping with a reference held (revalidated with one
 * stat() of the file), or NULL with *status and *errnop set (NSS_STATUS_UNAVAIL).
 */
struct nss_map *nss_map_acquire(enum nss_status *status, int *errnop);
void nss_map_release(struct nss_map *m);

/* Enumeration state locks (nss_passwd.c, nss_group.c); taken before the
 * mapping lock, and all held across fork() so the child starts unlocked. */
extern pthread_mutex_t nss_pwent_lock;
extern pthread_mutex_t nss_grent_lock;
/* Rate-limit state of nss_log; taken last (nss_log runs under map_lock). */
extern pthread_mutex_t nss_log_lock;

/* Logs to syslog (LOG_AUTHPRIV), rate-limited; also to stderr when
 * NSS_MEDPLUM_DEBUG is set (ignored in setuid programs). */
void nss_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Maps a reader result of a point lookup to the NSS answer. */
enum nss_status nss_lookup_status(int mpc_result, int *errnop);

/* Buffer handling shared by passwd and group: copies s into buf at *used. */
char *nss_copy_str(char *buf, size_t *used, const char *s);

/* Exported entry points (prototypes for -Wmissing-prototypes). */
NSS_EXPORT enum nss_status _nss_medplum_getpwnam_r(const char *name, struct passwd *pw, char *buf,
                                                   size_t buflen, int *errnop);
NSS_EXPORT enum nss_status _nss_medplum_getpwuid_r(uid_t uid, struct passwd *pw, char *buf,
                                                   size_t buflen, int *errnop);
NSS_EXPORT enum nss_status _nss_medplum_setpwent(int stayopen);
NSS_EXPORT enum nss_status _nss_medplum_getpwent_r(struct passwd *pw, char *buf, size_t buflen,
                                                   int *errnop);
NSS_EXPORT enum nss_status _nss_medplum_endpwent(void);

NSS_EXPORT enum nss_status _nss_medplum_getgrnam_r(const char *name, struct group *gr, char *buf,
                                                   size_t buflen, int *errnop);
NSS_EXPORT enum nss_status _nss_medplum_getgrgid_r(gid_t gid, struct group *gr, char *buf,
                                                   size_t buflen, int *errnop);
NSS_EXPORT enum nss_status _nss_medplum_setgrent(int stayopen);
NSS_EXPORT enum nss_status _nss_medplum_getgrent_r(struct group *gr, char *buf, size_t buflen,
                                                   int *errnop);
NSS_EXPORT enum nss_status _nss_medplum_endgrent(void);
NSS_EXPORT enum nss_status _nss_medplum_initgroups_dyn(const char *user, gid_t group,
                                                       long int *start, long int *size,
                                                       gid_t **groupsp, long int limit,
                                                       int *errnop);

#endif
