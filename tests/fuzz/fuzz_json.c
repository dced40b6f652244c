/* libFuzzer target: Medplum error bodies and rate-limit hints. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[64];
    char *header = malloc(size + 1);

    if (header == NULL)
        return 0;
    memcpy(header, data, size);
    header[size] = '\0';
    mp_error_text((const char *)data, size, text, sizeof(text));
    (void)mp_retry_after((const char *)data, size, header);
    free(header);
    return 0;
}
