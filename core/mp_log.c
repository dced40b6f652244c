#include "mp_log.h"

#include <stdarg.h>
#include <stdio.h>

void mp_log(const mp_logger *log, int priority, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (log == NULL || log->emit == NULL)
        return;
    if (priority == LOG_DEBUG && !log->debug)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log->emit(log->ctx, priority, line);
}

void mp_log_stderr_emit(void *ctx, int priority, const char *message)
{
    const char *prefix = ctx != NULL ? (const char *)ctx : "pam_medplum";
    const char *level = priority <= LOG_ERR       ? "error: "
                        : priority == LOG_WARNING ? "warning: "
                                                  : "";

    fprintf(stderr, "%s: %s%s\n", prefix, level, message);
}
