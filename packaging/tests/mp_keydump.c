/*
 * Prints the configuration key table of core/mp_config.c, one key a line:
 *   key<TAB>default (or "-" when the key has no default)<TAB>description
 * Used by check-man.sh to hold pam_medplum.conf(5) and the shipped
 * pam_medplum.conf to the table.
 */
#include <stdio.h>

#include "mp_config.h"

int main(void)
{
    size_t n = 0;
    const struct mp_config_key_info *k = mp_config_keys(&n);

    for (size_t i = 0; i < n; i++)
        printf("%s\t%s\t%s\n", k[i].key, k[i].default_text ? k[i].default_text : "-",
               k[i].description);
    return n > 0 ? 0 : 1;
}
