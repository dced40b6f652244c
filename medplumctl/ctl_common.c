#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mp_account.h"
#include "mp_idmap.h"

void ctl_set_config(struct ctl *c, const char *path)
{
    c->config_path = path;
    c->config_given = true;
}

int ctl_check_privileges(const struct ctl *c)
{
    struct stat st;
    int fd;

    if (geteuid() == 0)
        return 0;
    if (!c->config_given) {
        fprintf(stderr, "medplumctl: must be run as root (or with --config naming a file you "
                        "own, for tests)\n");
        return CTL_FAIL;
    }
    fd = open(c->config_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_uid != geteuid()) {
        fprintf(stderr, "medplumctl: not root, and %s is not a file you own\n", c->config_path);
        if (fd >= 0)
            close(fd);
        return CTL_FAIL;
    }
    close(fd);
    return 0;
}

int ctl_load_config(struct ctl *c)
{
    int problems;

    if (ctl_check_privileges(c) != 0)
        return CTL_FAIL;
    if (mp_config_init(&c->cfg) != 0) {
        fprintf(stderr, "medplumctl: cannot initialise the configuration\n");
        return CTL_FAIL;
    }
    c->cfg_loaded = true;
    problems = mp_config_load(&c->cfg, c->config_path, &c->log);
    if (problems != 0) {
        fprintf(stderr, "medplumctl: %s has %d problem%s (see medplumctl check-config)\n",
                c->config_path, problems, problems == 1 ? "" : "s");
        return CTL_FAIL;
    }
    return 0;
}

static const char *env_file(const char *name, const char *dflt)
{
    const char *v = getenv(name);

    return v != NULL && v[0] == '/' ? v : dflt;
}

const char *ctl_passwd_file(void)
{
    return env_file("MEDPLUM_PASSWD_FILE", MP_PASSWD_FILE);
}

const char *ctl_group_file(void)
{
    return env_file("MEDPLUM_GROUP_FILE", MP_GROUP_FILE);
}

void ctl_print_json(cJSON *root)
{
    char *text = root ? cJSON_Print(root) : NULL;

    if (text != NULL) {
        fputs(text, stdout);
        fputc('\n', stdout);
    } else {
        fprintf(stderr, "medplumctl: out of memory\n");
    }
    free(text);
    cJSON_Delete(root);
}

void ctl_format_time(long long t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
        snprintf(out, outlen, "never");
        return;
    }
    strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm);
}
