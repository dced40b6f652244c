/*
 * File handling under <cache_dir>/private/ for mp_state.c (internal): the
 * checked directory, whole-file reads, atomic replacement and the state
 * lock.  Everything goes through a directory fd opened without following
 * symlinks, and every file is opened O_NOFOLLOW and checked to be a
 * root-owned (or euid-owned, for tests) 0600 regular file, so a planted
 * symlink or a loose file is refused rather than read or overwritten.
 */
#ifndef MP_STATE_FILE_H
#define MP_STATE_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "mp_log.h"

/* State files are small; anything larger is refused as corrupt. */
#define MPS_MAX_FILE 4096

/*
 * Opens cache_dir/private.  With create, missing directories are made (via
 * mp_cache_prepare_dir).  Returns a directory fd, -2 when it does not exist
 * and create is false (nothing stored yet), or -1 when it is unusable.
 */
int mps_open_dir(const char *cache_dir, bool create, const mp_logger *log);

/* Reads name into a malloc'd NUL-terminated buffer (wipe with mp_freezero
 * over MPS_MAX_FILE + 1).  Returns 0, 1 when the file does not exist, -1. */
int mps_read(int dfd, const char *name, char **text, const mp_logger *log);

/* Replaces name atomically with text (temp file, fsync, rename, fsync dir). */
int mps_write(int dfd, const char *name, const char *text, size_t len, const mp_logger *log);

/* Removes name; a missing file is success. */
int mps_remove(int dfd, const char *name, const mp_logger *log);

/* Takes the state lock (bounded wait).  Returns an fd for mps_unlock, or -1. */
int mps_lock(int dfd, const mp_logger *log);
void mps_unlock(int lock_fd);

#endif
