/* libFuzzer target: the config parser never crashes, leaks or reads out of
 * bounds, whatever the file holds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mp_config cfg;
    char *text = malloc(size + 1);

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (mp_config_init(&cfg) == 0)
        mp_config_parse(&cfg, "fuzz.conf", text, NULL);
    mp_config_free(&cfg);
    free(text);
    return 0;
}
