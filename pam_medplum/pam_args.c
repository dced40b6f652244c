#include "pam_args.h"

#include <string.h>
#include <syslog.h>

#include <security/pam_ext.h>

#include "mp_config.h"

void pam_medplum_parse_args(pam_handle_t *pamh, int argc, const char **argv,
                            struct pam_medplum_args *args)
{
    memset(args, 0, sizeof(*args));
    args->config = MP_DEFAULT_CONFIG;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "config=", 7) == 0 && a[7] == '/')
            args->config = a + 7;
        else if (strcmp(a, "debug") == 0)
            args->debug = true;
        else if (strcmp(a, "use_first_pass") == 0)
            args->use_first_pass = true;
        else if (strcmp(a, "try_first_pass") == 0)
            args->try_first_pass = true;
        else if (strcmp(a, "use_authtok") == 0)
            args->use_authtok = true;
        else
            pam_syslog(pamh, LOG_ERR, "unknown module argument ignored: %.64s", a);
    }
}
