/*
 * Cache writer/owner side (mp_cache.h): directory preparation, the writer
 * lock, atomic replacement of accounts.db, full loads and the single-user
 * upsert used after a login.  The format itself lives in mp_cache_encode.c
 * (writing) and mp_cache_reader.c (reading, shared with NSS).
 */
#include "mp_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mp_cache_encode.h"
#include "mp_cache_reader.h"
#include "mp_config.h"
#include "mp_crypto.h"

/* A stuck writer must not hang every login forever. */
#define MP_CACHE_LOCK_TIMEOUT_MS 30000

/* ---- directories ------------------------------------------------------- */

/* Opens dir without following a final symlink and applies the cache
 * ownership rule; `private_dir` additionally forbids any group/other access. */
static int open_dir_checked(const char *dir, bool private_dir, const mp_logger *log)
{
    char why[MPC_WHY_LEN];
    struct stat st;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        mp_log(log, LOG_ERR, "cache: %s: cannot open directory: %s", dir, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || mpc_check_stat(&st, true, dir, why, sizeof(why)) != 0) {
        mp_log(log, LOG_ERR, "cache: refusing %s", why);
        close(fd);
        return -1;
    }
    if (private_dir && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        mp_log(log, LOG_ERR,
               "cache: refusing %s: accessible by group or others (mode %04o, "
               "must be 0700)",
               dir, (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    return fd;
}

/* mkdir that sets the exact mode (a umask must not make accounts.db
 * unreadable to NSS users, nor private/ readable). */
static int make_dir(int at, const char *path, mode_t mode, const mp_logger *log)
{
    int fd;

    if (mkdirat(at, path, mode) != 0) {
        if (errno == EEXIST)
            return 0;
        mp_log(log, LOG_ERR, "cache: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fchmod(fd, mode) != 0) {
        mp_log(log, LOG_ERR, "cache: cannot set mode of %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int mp_cache_prepare_dir(const char *cache_dir, const mp_logger *log)
{
    int ret = -1, dfd = -1, pfd = -1;
    char path[4096];

    if (make_dir(AT_FDCWD, cache_dir, 0755, log) != 0)
        goto out;
    dfd = open_dir_checked(cache_dir, false, log);
    if (dfd < 0 || make_dir(dfd, MP_CACHE_PRIVATE, 0700, log) != 0)
        goto out;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", cache_dir, MP_CACHE_PRIVATE) >= sizeof(path))
        goto out;
    pfd = open_dir_checked(path, true, log);
    if (pfd < 0)
        goto out;
    ret = 0;
out:
    if (pfd >= 0)
        close(pfd);
    if (dfd >= 0)
        close(dfd);
    return ret;
}

/* ---- lock ---------------------------------------------------------------- */

int mp_cache_lock(const char *cache_dir, const mp_logger *log)
{
    int ret = -1, dfd = -1, fd = -1;
    struct timespec pause = {0, 10 * 1000 * 1000};

    dfd = open_dir_checked(cache_dir, false, log);
    if (dfd < 0)
        goto out;
    fd = openat(dfd, MP_CACHE_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        mp_log(log, LOG_ERR, "cache: %s/%s: %s", cache_dir, MP_CACHE_LOCK, strerror(errno));
        goto out;
    }
    if (mp_check_file_security(fd, MP_CACHE_LOCK, false, log) != 0)
        goto out;
    /* Poll rather than block: the wait is bounded and EINTR-proof. */
    for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; waited += 10) {
        if ((errno != EWOULDBLOCK && errno != EINTR) || waited >= MP_CACHE_LOCK_TIMEOUT_MS) {
            mp_log(log, LOG_ERR, "cache: cannot lock %s/%s: %s", cache_dir, MP_CACHE_LOCK,
                   errno == EWOULDBLOCK ? "held by another writer for too long" : strerror(errno));
            goto out;
        }
        nanosleep(&pause, NULL);
    }
    ret = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    return ret;
}

void mp_cache_unlock(int lock_fd)
{
    if (lock_fd >= 0)
        close(lock_fd); /* releases the flock */
}

/* ---- atomic write -------------------------------------------------------- */

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads the temp file back and checks it byte for byte and with the same
 * reader NSS uses, so a file NSS would refuse is never renamed in. */
static int verify_written(int fd, const uint8_t *img, size_t len, char *why, size_t whylen)
{
    int ret = -1;
    uint8_t *back = malloc(len);
    size_t got = 0;
    struct mpc_view v;

    if (back == NULL) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    while (got < len) {
        ssize_t n = pread(fd, back + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, whylen, "read back: %s", n == 0 ? "short file" : strerror(errno));
            goto out;
        }
        got += (size_t)n;
    }
    if (memcmp(back, img, len) != 0) {
        snprintf(why, whylen, "read back differs from what was written");
        goto out;
    }
    if (mpc_view_init(&v, back, len, why, whylen) != 0 || mpc_view_check_all(&v, why, whylen) != 0)
        goto out;
    ret = 0;
out:
    free(back);
    return ret;
}

/* Creates cache_dir/.accounts.db.XXXXXXXXXXXXXXXX with O_EXCL|O_NOFOLLOW. */
static int create_temp(int dfd, char *name, size_t namelen, const mp_logger *log)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        uint8_t rnd[8];
        int fd;

        if (mp_random_bytes(rnd, sizeof(rnd)) != 0) {
            mp_log(log, LOG_ERR, "cache: no random bytes for a temp file name");
            return -1;
        }
        snprintf(name, namelen, ".%s.%02x%02x%02x%02x%02x%02x%02x%02x", MP_CACHE_FILE, rnd[0],
                 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST) {
            mp_log(log, LOG_ERR, "cache: cannot create temp file: %s", strerror(errno));
            return -1;
        }
    }
    mp_log(log, LOG_ERR, "cache: cannot create a unique temp file");
    return -1;
}

/* An existing accounts.db that is a symlink, not root's or writable by
 * others means someone tampered with the cache: refuse rather than paper
 * over it. */
static int check_existing(int dfd, const char *cache_dir, const mp_logger *log)
{
    struct stat st;
    char why[MPC_WHY_LEN];

    if (fstatat(dfd, MP_CACHE_FILE, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -1;
    if (mpc_check_stat(&st, false, MP_CACHE_FILE, why, sizeof(why)) != 0) {
        mp_log(log, LOG_ERR, "cache: refusing to replace %s/%s", cache_dir, why);
        return -1;
    }
    return 0;
}

/* temp file: write, fsync, verify; then rename over accounts.db and fsync
 * the directory so the rename itself survives a crash. */
static int replace_file(int dfd, const char *cache_dir, const uint8_t *img, size_t len,
                        const mp_logger *log)
{
    int ret = -1, fd = -1;
    char tmp[64], why[MPC_WHY_LEN];
    bool created = false;

    fd = create_temp(dfd, tmp, sizeof(tmp), log);
    if (fd < 0)
        goto out;
    created = true;
    if (fchmod(fd, 0644) != 0 || write_all(fd, img, len) != 0 || fsync(fd) != 0) {
        mp_log(log, LOG_ERR, "cache: writing %s/%s failed: %s", cache_dir, tmp, strerror(errno));
        goto out;
    }
    if (verify_written(fd, img, len, why, sizeof(why)) != 0) {
        mp_log(log, LOG_ERR, "cache: verification of %s/%s failed: %s", cache_dir, tmp, why);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        mp_log(log, LOG_ERR, "cache: closing %s/%s failed: %s", cache_dir, tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, MP_CACHE_FILE) != 0) {
        mp_log(log, LOG_ERR, "cache: rename to %s/%s failed: %s", cache_dir, MP_CACHE_FILE,
               strerror(errno));
        goto out;
    }
    created = false;
    if (fsync(dfd) != 0)
        mp_log(log, LOG_WARNING, "cache: fsync of %s failed: %s", cache_dir, strerror(errno));
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlinkat(dfd, tmp, 0);
    return ret;
}

int mp_cache_write(const char *cache_dir, const struct mp_cache_data *data, const mp_logger *log)
{
    int ret = -1, dfd = -1;
    uint8_t *img = NULL;
    size_t len = 0;
    char why[MPC_WHY_LEN];
    struct mpc_view v;

    if (mp_cache_validate(data, log) != 0) {
        mp_log(log, LOG_ERR, "cache: refusing to write invalid data to %s", cache_dir);
        goto out;
    }
    if (mp_cache_encode(data, &img, &len, why, sizeof(why)) != 0 ||
        mpc_view_init(&v, img, len, why, sizeof(why)) != 0 ||
        mpc_view_check_all(&v, why, sizeof(why)) != 0) {
        mp_log(log, LOG_ERR, "cache: %s", why);
        goto out;
    }
    dfd = open_dir_checked(cache_dir, false, log);
    if (dfd < 0 || check_existing(dfd, cache_dir, log) != 0)
        goto out;
    if (replace_file(dfd, cache_dir, img, len, log) != 0)
        goto out;
    ret = 0;
out:
    if (ret != 0)
        mp_log(log, LOG_ERR, "cache: %s/%s not updated, previous version kept", cache_dir,
               MP_CACHE_FILE);
    if (dfd >= 0)
        close(dfd);
    free(img);
    return ret;
}

/* ---- loading ------------------------------------------------------------- */

static int dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst == NULL ? -1 : 0;
}

static int load_user(const struct mpc_view *v, uint32_t i, struct mp_cache_user *u)
{
    struct mpc_user r;

    if (mpc_user_at(v, i, &r) != MPC_FOUND)
        return -1;
    u->uid = r.uid;
    u->gid = r.gid;
    u->admin = r.admin;
    if (dup_str(&u->name, r.name) != 0 || dup_str(&u->gecos, r.gecos) != 0 ||
        dup_str(&u->home, r.home) != 0 || dup_str(&u->shell, r.shell) != 0 ||
        dup_str(&u->email, r.email) != 0 || dup_str(&u->profile, r.profile) != 0 ||
        dup_str(&u->membership_id, r.membership) != 0)
        return -1;
    return 0;
}

static int load_group(const struct mpc_view *v, uint32_t i, struct mp_cache_group *g)
{
    struct mpc_group r;
    const char *m;

    if (mpc_group_at(v, i, &r) != MPC_FOUND || dup_str(&g->name, r.name) != 0)
        return -1;
    g->gid = r.gid;
    if (r.count == 0)
        return 0;
    g->members = calloc(r.count, sizeof(*g->members));
    if (g->members == NULL)
        return -1;
    for (uint32_t j = 0; j < r.count; j++) {
        if (mpc_group_member(v, &r, j, &m) != MPC_FOUND || dup_str(&g->members[j], m) != 0)
            return -1;
        g->nmembers++;
    }
    return 0;
}

static int load_view(const struct mpc_view *v, struct mp_cache_data *d)
{
    struct mpc_resv r;

    d->generated_at = v->generated_at;
    d->users = calloc(v->nusers ? v->nusers : 1, sizeof(*d->users));
    d->groups = calloc(v->ngroups ? v->ngroups : 1, sizeof(*d->groups));
    d->reservations = calloc(v->nresv ? v->nresv : 1, sizeof(*d->reservations));
    if (d->users == NULL || d->groups == NULL || d->reservations == NULL)
        return -1;
    /* Counts grow before each element is filled, so a partial element is
     * still freed by mp_cache_data_free. */
    for (uint32_t i = 0; i < v->nusers; i++)
        if (d->nusers++, load_user(v, i, &d->users[i]) != 0)
            return -1;
    for (uint32_t i = 0; i < v->ngroups; i++)
        if (d->ngroups++, load_group(v, i, &d->groups[i]) != 0)
            return -1;
    for (uint32_t i = 0; i < v->nresv; i++) {
        d->nreservations++;
        if (mpc_resv_at(v, i, &r) != MPC_FOUND ||
            dup_str(&d->reservations[i].profile, r.profile) != 0)
            return -1;
        d->reservations[i].uid = r.uid;
    }
    return 0;
}

int mp_cache_load(const char *cache_dir, struct mp_cache_data *data, const mp_logger *log)
{
    int ret = -1, st;
    struct mpc_file f;
    struct mpc_view v;
    char why[MPC_WHY_LEN];

    memset(data, 0, sizeof(*data));
    st = mpc_file_open(cache_dir, &f, &v, why, sizeof(why));
    if (st == MPC_OPEN_MISSING)
        return 0;
    if (st != MPC_OPEN_OK) {
        mp_log(log, LOG_ERR, "cache: %s: %s", cache_dir, why);
        return -1;
    }
    if (mpc_view_check_all(&v, why, sizeof(why)) != 0) {
        mp_log(log, LOG_ERR, "cache: %s/%s: %s", cache_dir, MP_CACHE_FILE, why);
        goto out;
    }
    if (load_view(&v, data) != 0) {
        mp_log(log, LOG_ERR, "cache: %s/%s: cannot load (out of memory?)", cache_dir,
               MP_CACHE_FILE);
        goto out;
    }
    ret = 0;
out:
    if (ret != 0)
        mp_cache_data_free(data);
    mpc_file_close(&f);
    return ret;
}

static void free_user(struct mp_cache_user *u)
{
    free(u->name);
    free(u->gecos);
    free(u->home);
    free(u->shell);
    free(u->email);
    free(u->profile);
    free(u->membership_id);
}

static void free_group(struct mp_cache_group *g)
{
    for (size_t j = 0; j < g->nmembers; j++)
        free(g->members[j]);
    free(g->members);
    free(g->name);
}

void mp_cache_data_free(struct mp_cache_data *data)
{
    if (data == NULL)
        return;
    for (size_t i = 0; i < data->nusers; i++)
        free_user(&data->users[i]);
    for (size_t i = 0; i < data->ngroups; i++)
        free_group(&data->groups[i]);
    for (size_t i = 0; i < data->nreservations; i++)
        free(data->reservations[i].profile);
    free(data->users);
    free(data->groups);
    free(data->reservations);
    memset(data, 0, sizeof(*data));
}

const struct mp_cache_user *mp_cache_find_user(const struct mp_cache_data *data, const char *name)
{
    if (data == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < data->nusers; i++)
        if (data->users[i].name != NULL && strcmp(data->users[i].name, name) == 0)
            return &data->users[i];
    return NULL;
}
