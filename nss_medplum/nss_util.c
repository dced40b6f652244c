/* Logging, status mapping and buffer helpers shared by the NSS entry points. */
#include "nss_medplum.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

/* One message per minute unless it changes: a broken cache must not flood
 * syslog from every process on the machine. */
#define NSS_LOG_INTERVAL 60

pthread_mutex_t nss_log_lock = PTHREAD_MUTEX_INITIALIZER;

void nss_log(const char *fmt, ...)
{
    static char last[MPC_WHY_LEN + 64];
    static time_t last_time;
    char msg[sizeof(last)];
    time_t now = time(NULL);
    va_list ap;
    int emit;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&nss_log_lock);
    emit = strcmp(msg, last) != 0 || now - last_time >= NSS_LOG_INTERVAL || now < last_time;
    if (emit) {
        memcpy(last, msg, sizeof(last));
        last_time = now;
    }
    pthread_mutex_unlock(&nss_log_lock);
    if (!emit)
        return;
    /* no openlog(): the program's own ident and facility settings stay */
    syslog(LOG_AUTHPRIV | LOG_ERR, "nss_medplum: %s", msg);
    if (secure_getenv("NSS_MEDPLUM_DEBUG") != NULL)
        fprintf(stderr, "nss_medplum: %s\n", msg);
}

enum nss_status nss_lookup_status(int mpc_result, int *errnop)
{
    if (mpc_result == MPC_NOTFOUND) {
        *errnop = ENOENT;
        return NSS_STATUS_NOTFOUND;
    }
    nss_log("cache is corrupt (bad record or index)");
    *errnop = EIO;
    return NSS_STATUS_UNAVAIL;
}

char *nss_copy_str(char *buf, size_t *used, const char *s)
{
    size_t n = strlen(s) + 1;
    char *dst = buf + *used;

    memcpy(dst, s, n);
    *used += n;
    return dst;
}
