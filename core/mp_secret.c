#include "mp_secret.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mp_freezero(void *ptr, size_t len)
{
    if (ptr == NULL)
        return;
    explicit_bzero(ptr, len);
    free(ptr);
}

void mp_secret_free(char *secret)
{
    if (secret == NULL)
        return;
    mp_freezero(secret, strlen(secret));
}

void mp_secret_clear(char **secret)
{
    if (secret == NULL)
        return;
    mp_secret_free(*secret);
    *secret = NULL;
}

char *mp_secret_printf(const char *fmt, ...)
{
    va_list ap;
    char *out;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    out = malloc((size_t)n + 1);
    if (out == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}
