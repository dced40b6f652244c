#include "ctl.h"

int cmd_cache(struct ctl *c, int argc, char **argv)
{
    (void)c;
    (void)argc;
    (void)argv;
    fprintf(stderr, "medplumctl: not implemented yet\n");
    return CTL_FAIL;
}
