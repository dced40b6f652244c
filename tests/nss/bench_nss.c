/*
 * bench_nss: getpwnam_r/getpwuid_r hit and miss at 1k/10k/100k entries,
 * libnss_medplum.so.2 (dlopen, $NSS_MEDPLUM_MODULE) against glibc's files
 * backend, in one process.
 *
 * The files backend is glibc's own code: _nss_files_getpwnam_r and
 * _nss_files_getpwuid_r (in libc.so.6 since glibc 2.34, reached through
 * dlopen("libnss_files.so.2")).  It always reads /etc/passwd, so the bench
 * enters a private mount namespace (unshare(CLONE_NEWNS), needs root) and
 * bind-mounts a generated passwd file with the same entries over
 * /etc/passwd there; the host's /etc is never touched and the mount dies
 * with the process.  Without root only our module is measured.
 *
 *   bench_nss [SIZES...]     default 1000 10000 100000
 */
#include <dlfcn.h>
#include <errno.h>
#include <nss.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

typedef enum nss_status (*pwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*pwuid_fn)(uid_t, struct passwd *, char *, size_t, int *);

struct backend {
    const char *label;
    pwnam_fn getpwnam_r;
    pwuid_fn getpwuid_r;
};

enum op { NAME_HIT, NAME_MISS, UID_HIT, UID_MISS, NOPS };
static const char *op_names[NOPS] = {"getpwnam hit", "getpwnam miss", "getpwuid hit",
                                     "getpwuid miss"};

#define KEYS 1024

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One lookup; returns 0 when the answer is the expected one. */
static int lookup(const struct backend *b, enum op op, unsigned long n, unsigned k)
{
    char name[32], buf[1024];
    struct passwd pw;
    int err = 0;
    unsigned long i = (k * 2654435761u) % n; /* spread over the table */
    enum nss_status st;

    switch (op) {
    case NAME_HIT:
        snprintf(name, sizeof(name), "u%06lu", i);
        return b->getpwnam_r(name, &pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS ? 0 : -1;
    case NAME_MISS:
        snprintf(name, sizeof(name), "x%06lu", i);
        st = b->getpwnam_r(name, &pw, buf, sizeof(buf), &err);
        return st == NSS_STATUS_NOTFOUND ? 0 : -1;
    case UID_HIT:
        return b->getpwuid_r((uid_t)(100000 + i), &pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS
                   ? 0
                   : -1;
    default:
        st = b->getpwuid_r((uid_t)(900000 + i), &pw, buf, sizeof(buf), &err);
        return st == NSS_STATUS_NOTFOUND ? 0 : -1;
    }
}

/* ns per lookup: repeats until ~0.3 s (at least 5 lookups) have passed. */
static double measure(const struct backend *b, enum op op, unsigned long n)
{
    double start = now_ns(), elapsed;
    unsigned long count = 0;

    do {
        for (unsigned k = 0; k < 16; k++, count++) {
            if (lookup(b, op, n, (unsigned)(count % KEYS)) != 0) {
                fprintf(stderr, "bench: %s %s gave a wrong answer (n=%lu)\n", b->label,
                        op_names[op], n);
                exit(1);
            }
        }
        elapsed = now_ns() - start;
    } while (elapsed < 3e8 && count < 50000000);
    return elapsed / (double)count;
}

static int setup_files_namespace(void)
{
    if (geteuid() != 0 || unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        fprintf(stderr, "bench: no private mount namespace (%s): files backend skipped\n",
                geteuid() != 0 ? "not root" : strerror(errno));
        return -1;
    }
    return 0;
}

static int bind_passwd(const char *file, int mounted)
{
    if (mounted)
        umount2("/etc/passwd", MNT_DETACH);
    if (mount(file, "/etc/passwd", NULL, MS_BIND, NULL) != 0) {
        fprintf(stderr, "bench: bind mount over /etc/passwd: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static void *must_dlopen(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

    if (h == NULL) {
        fprintf(stderr, "bench: dlopen %s: %s\n", path, dlerror());
        exit(1);
    }
    return h;
}

static void prepare_size(const char *root, unsigned long n, char *cache, size_t cachelen,
                         char *passwd, size_t pwlen)
{
    struct mp_cache_data d;
    FILE *pw;

    snprintf(cache, cachelen, "%s/cache-%lu", root, n);
    snprintf(passwd, pwlen, "%s/passwd-%lu", root, n);
    pw = fopen(passwd, "we");
    if (pw == NULL) {
        perror(passwd);
        exit(1);
    }
    td_generate(&d, n, pw, NULL);
    fclose(pw);
    td_write(cache, &d);
    mp_cache_data_free(&d);
}

int main(int argc, char **argv)
{
    unsigned long sizes[8] = {1000, 10000, 100000};
    int nsizes = 3, files_ok, mounted = 0;
    const char *module = getenv("NSS_MEDPLUM_MODULE");
    struct backend ours = {"medplum", NULL, NULL}, files = {"files", NULL, NULL};
    char *root = td_tmpdir("nss-bench");
    void *h;

    if (argc > 1) {
        nsizes = 0;
        for (int i = 1; i < argc && nsizes < 8; i++)
            sizes[nsizes++] = strtoul(argv[i], NULL, 10);
    }
    h = must_dlopen(module != NULL ? module : "build/libnss_medplum.so.2");
    ours.getpwnam_r = (pwnam_fn)dlsym(h, "_nss_medplum_getpwnam_r");
    ours.getpwuid_r = (pwuid_fn)dlsym(h, "_nss_medplum_getpwuid_r");
    h = must_dlopen("libnss_files.so.2");
    files.getpwnam_r = (pwnam_fn)dlsym(h, "_nss_files_getpwnam_r");
    files.getpwuid_r = (pwuid_fn)dlsym(h, "_nss_files_getpwuid_r");
    files_ok = files.getpwnam_r != NULL && files.getpwuid_r != NULL && setup_files_namespace() == 0;

    printf("%8s  %-14s %14s %14s %12s\n", "entries", "lookup", "medplum ns/op", "files ns/op",
           "files/medplum");
    for (int s = 0; s < nsizes; s++) {
        char cache[4096], passwd[4096];
        unsigned long n = sizes[s];

        prepare_size(root, n, cache, sizeof(cache), passwd, sizeof(passwd));
        setenv("NSS_MEDPLUM_CACHE_DIR", cache, 1);
        if (files_ok && bind_passwd(passwd, mounted) != 0)
            files_ok = 0;
        mounted = files_ok;
        for (int op = 0; op < NOPS; op++) {
            double m = measure(&ours, (enum op)op, n);
            if (files_ok) {
                double f = measure(&files, (enum op)op, n);
                printf("%8lu  %-14s %14.1f %14.1f %11.0fx\n", n, op_names[op], m, f, f / m);
            } else {
                printf("%8lu  %-14s %14.1f %14s %12s\n", n, op_names[op], m, "-", "-");
            }
            fflush(stdout);
        }
    }
    if (mounted)
        umount2("/etc/passwd", MNT_DETACH);
    td_rmtree(root);
    free(root);
    return 0;
}
