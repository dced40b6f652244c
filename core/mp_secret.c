#include "mp_secret.h"

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
