/*
 * The last sync's outcome, for `medplumctl status`: <cache_dir>/sync-status.json
 * (root, 0644: no secrets, just times, counts and the last error text),
 * replaced atomically by every sync that is not a dry run.
 */
#ifndef SYNC_STATUS_H
#define SYNC_STATUS_H

#include <stdbool.h>

#include "mp_log.h"

#define SYNC_STATUS_FILE "sync-status.json"

struct sync_status {
    long long attempt_time; /* last run */
    char result[16];        /* "ok", "failed", "refused" */
    char message[256];
    char source[16]; /* "memberships", "practitioners", "" */
    bool membership_known;
    long long success_time; /* last run that wrote the cache */
    long users;             /* users written by that run */
    long skipped;
};

/* 0 read, 1 no file yet, -1 unreadable or malformed (logged). */
int sync_status_read(const char *cache_dir, struct sync_status *st, const mp_logger *log);
int sync_status_write(const char *cache_dir, const struct sync_status *st, const mp_logger *log);

#endif
