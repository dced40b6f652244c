/* Helpers shared by the cache/NSS tests and the benchmark: build
 * mp_cache_data in a few calls, write it with the real writer, capture logs,
 * replace accounts.db with raw bytes. */
#ifndef NSS_TESTLIB_H
#define NSS_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mp_cache.h"

/* Appends a user; gecos/home/shell/email/membership may be NULL.  profile
 * NULL derives "Practitioner/00000000-0000-4000-8000-<uid>". */
void td_user(struct mp_cache_data *d, const char *name, uint32_t uid, uint32_t gid,
             const char *gecos, const char *profile);
/* members: comma-separated names, or "" */
void td_group(struct mp_cache_data *d, const char *name, uint32_t gid, const char *members);
void td_resv(struct mp_cache_data *d, const char *profile, uint32_t uid);
/* Standard fixture: alice 5001, bob 5002, carol 5003 (gid 6000), groups
 * alice, bob, medstaff (6000: alice,bob,carol), medadmin (6001: alice). */
void td_fixture(struct mp_cache_data *d);

/* n synthetic users u000000.. (uid = gid = 100000 + i, private groups,
 * reservations, group "bulkstaff" 99000 with every tenth user); when pw/gr are
 * given, the same entries in /etc/passwd and /etc/group format. */
void td_generate(struct mp_cache_data *d, unsigned long n, FILE *pw, FILE *gr);

/* prepare_dir + lock + write; aborts the test program on failure. */
void td_write(const char *dir, const struct mp_cache_data *d);

/* Atomically replaces dir/accounts.db with raw bytes (mode 0644). */
void td_write_raw(const char *dir, const void *buf, size_t len);
/* Reads dir/accounts.db into a malloc'd buffer. */
uint8_t *td_read_raw(const char *dir, size_t *len);
/* Recomputes the header checksum of an image (to test deeper checks). */
void td_fix_crc(uint8_t *img, size_t len);
void td_put32(uint8_t *p, uint32_t v);
uint32_t td_get32(const uint8_t *p);

/* A logger collecting every line into one buffer. */
struct td_log {
    mp_logger logger;
    char text[16384];
};
void td_log_init(struct td_log *l);
int td_log_has(const struct td_log *l, const char *needle);

/* Ends a forked test child with `code`.  It execs a shell rather than
 * calling _exit: the child still holds the parent's allocations, which
 * valgrind (it follows forks) would report as leaks of the child; an exec
 * ends the image without that check. */
void td_child_exit(int code) __attribute__((noreturn));

/* mkdtemp under $TMPDIR; td_rmtree removes it. */
char *td_tmpdir(const char *tag);
void td_rmtree(const char *path);

#endif
