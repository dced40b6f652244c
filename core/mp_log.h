/*
 * Logging sink shared by the PAM module (pam_syslog), medplumctl (stderr and
 * syslog) and the tests (capture).  Secrets never reach this interface: the
 * callers log reasons, user names and ids only.
 */
#ifndef MP_LOG_H
#define MP_LOG_H

#include <stdbool.h>
#include <syslog.h>

typedef struct mp_logger {
    void (*emit)(void *ctx, int priority, const char *message);
    void *ctx;
    bool debug; /* LOG_DEBUG lines are dropped unless set */
} mp_logger;

void mp_log(const mp_logger *log, int priority, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A logger writing to stderr with a prefix; used by medplumctl. */
void mp_log_stderr_emit(void *ctx, int priority, const char *message);

#endif
