#include "mp_state_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mp_cache.h"
#include "mp_config.h"
#include "mp_crypto.h"
#include "mp_secret.h"

#define LOCK_NAME "state.lock"
/* Updates hold the lock for microseconds; a holder stuck this long is
 * broken, and a login must not hang behind it. */
#define LOCK_TIMEOUT_MS 5000

/* Root-owned (or euid-owned, for unprivileged tests) and 0700: the files
 * below hold password verifiers. */
static int check_private_dir(int fd, const char *path, const mp_logger *log)
{
    struct stat st;

    if (fstat(fd, &st) != 0) {
        mp_log(log, LOG_ERR, "state: cannot stat %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        mp_log(log, LOG_ERR, "state: %s is not a directory", path);
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        mp_log(log, LOG_ERR, "state: %s is owned by uid %u, must be owned by root", path,
               (unsigned)st.st_uid);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        mp_log(log, LOG_ERR,
               "state: refusing %s: accessible by group or others (mode %04o, "
               "must be 0700)",
               path, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return 0;
}

int mps_open_dir(const char *cache_dir, bool create, const mp_logger *log)
{
    char path[4096];
    int fd;

    if (cache_dir == NULL || cache_dir[0] != '/' ||
        (size_t)snprintf(path, sizeof(path), "%s/%s", cache_dir, MP_CACHE_PRIVATE) >=
            sizeof(path)) {
        mp_log(log, LOG_ERR, "state: unusable cache_dir");
        return -1;
    }
    if (create && mp_cache_prepare_dir(cache_dir, log) != 0)
        return -1;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT && !create)
            return -2;
        mp_log(log, LOG_ERR, "state: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (check_private_dir(fd, path, log) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int read_all(int fd, char *buf, size_t cap, size_t *len)
{
    *len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + *len, cap - *len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        *len += (size_t)n;
        if (*len == cap)
            return 1; /* too large */
    }
}

int mps_read(int dfd, const char *name, char **text, const mp_logger *log)
{
    int ret = -1, fd, rc;
    char *buf = NULL;
    size_t len = 0;

    *text = NULL;
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        mp_log(log, LOG_ERR, "state: cannot open %s: %s", name, strerror(errno));
        return -1;
    }
    if (mp_check_file_security(fd, name, true, log) != 0)
        goto out;
    buf = calloc(1, MPS_MAX_FILE + 1);
    if (buf == NULL)
        goto out;
    rc = read_all(fd, buf, MPS_MAX_FILE, &len);
    if (rc != 0) {
        mp_log(log, LOG_ERR, "state: %s: %s", name, rc > 0 ? "too large" : strerror(errno));
        goto out;
    }
    buf[len] = '\0';
    *text = buf;
    buf = NULL;
    ret = 0;
out:
    mp_freezero(buf, MPS_MAX_FILE + 1);
    close(fd);
    return ret;
}

static int write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

int mps_write(int dfd, const char *name, const char *text, size_t len, const mp_logger *log)
{
    char tmp[128];
    uint32_t rnd = 0;
    int ret = -1, fd = -1;

    if (len > MPS_MAX_FILE || mp_random_bytes(&rnd, sizeof(rnd)) != 0 ||
        (size_t)snprintf(tmp, sizeof(tmp), ".%s.%ld.%08x.tmp", name, (long)getpid(),
                         (unsigned)rnd) >= sizeof(tmp)) {
        mp_log(log, LOG_ERR, "state: cannot write %s", name);
        return -1;
    }
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        mp_log(log, LOG_ERR, "state: cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    /* The umask must not loosen it, and a group-readable verifier is a leak. */
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0) {
        mp_log(log, LOG_ERR, "state: cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        mp_log(log, LOG_ERR, "state: cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, name) != 0) {
        mp_log(log, LOG_ERR, "state: cannot replace %s: %s", name, strerror(errno));
        goto out;
    }
    /* The rename itself must survive a crash: a lost "membership inactive"
     * or a resurrected verifier would undo a revocation. */
    if (fsync(dfd) != 0)
        mp_log(log, LOG_WARNING, "state: fsync of the directory failed: %s", strerror(errno));
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    if (ret != 0)
        unlinkat(dfd, tmp, 0);
    return ret;
}

int mps_remove(int dfd, const char *name, const mp_logger *log)
{
    if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT) {
        mp_log(log, LOG_ERR, "state: cannot remove %s: %s", name, strerror(errno));
        return -1;
    }
    if (fsync(dfd) != 0)
        mp_log(log, LOG_WARNING, "state: fsync of the directory failed: %s", strerror(errno));
    return 0;
}

int mps_lock(int dfd, const mp_logger *log)
{
    struct timespec pause = {0, 5 * 1000 * 1000};
    int fd, waited;

    fd = openat(dfd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        mp_log(log, LOG_ERR, "state: cannot open %s: %s", LOCK_NAME, strerror(errno));
        return -1;
    }
    if (mp_check_file_security(fd, LOCK_NAME, true, log) != 0) {
        close(fd);
        return -1;
    }
    /* Poll rather than block: the wait is bounded and EINTR-proof. */
    for (waited = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; waited += 5) {
        if ((errno != EWOULDBLOCK && errno != EINTR) || waited >= LOCK_TIMEOUT_MS) {
            mp_log(log, LOG_ERR, "state: cannot lock %s: %s", LOCK_NAME,
                   errno == EWOULDBLOCK ? "held too long by another process" : strerror(errno));
            close(fd);
            return -1;
        }
        nanosleep(&pause, NULL);
    }
    return fd;
}

void mps_unlock(int lock_fd)
{
    if (lock_fd >= 0) {
        flock(lock_fd, LOCK_UN);
        close(lock_fd);
    }
}
