/*
 * medplumctl: root's tool for pam_medplum and nss_medplum.  This file only
 * parses the global options and dispatches; each command lives in its own
 * cmd_*.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ctl.h"

static const struct ctl_command commands[] = {
    {"sync", "fetch the Medplum directory and rewrite the account cache", cmd_sync},
    {"status", "configuration summary, server reachability, last sync, backoff", cmd_status},
    {"check-config", "report every problem of the configuration and file permissions",
     cmd_check_config},
    {"test-login", "run the full login flow for USER and show every step", cmd_test_login},
    {"cache", "list the cached users, or purge a user's private state", cmd_cache},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: medplumctl [--config PATH] [--debug] COMMAND [ARGS]\n"
                 "       medplumctl COMMAND --help\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nglobal options:\n"
            "  -c, --config PATH  configuration file (default %s)\n"
            "  -d, --debug        also print debug messages\n"
            "  -h, --help         this text\n"
            "  -V, --version      print the version\n"
            "\nexit codes: 0 ok, 1 a problem was found or the operation failed, "
            "2 usage error\n",
            MP_DEFAULT_CONFIG);
}

static const struct ctl_command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"debug", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const struct ctl_command *cmd;
    struct ctl c;
    int opt, ret, sub_argc;
    char **sub_argv;

    memset(&c, 0, sizeof(c));
    c.config_path = MP_DEFAULT_CONFIG;
    c.log.emit = mp_log_stderr_emit;
    c.log.ctx = "medplumctl";
    /* '+': stop at the command, whose options are its own. */
    while ((opt = getopt_long(argc, argv, "+c:dhV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            ctl_set_config(&c, optarg);
            break;
        case 'd':
            c.debug = true;
            break;
        case 'h':
            usage(stdout);
            return CTL_OK;
        case 'V':
            printf("medplumctl %s\n", MP_VERSION);
            return CTL_OK;
        default:
            usage(stderr);
            return CTL_USAGE;
        }
    }
    c.log.debug = c.debug;
    if (optind >= argc) {
        usage(stderr);
        return CTL_USAGE;
    }
    cmd = find_command(argv[optind]);
    if (cmd == NULL) {
        fprintf(stderr, "medplumctl: unknown command '%s'\n", argv[optind]);
        usage(stderr);
        return CTL_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "medplumctl: cannot initialise libcurl\n");
        return CTL_FAIL;
    }
    sub_argc = argc - optind;
    sub_argv = argv + optind;
    optind = 0; /* glibc: re-initialise getopt for the command's own options */
    ret = cmd->run(&c, sub_argc, sub_argv);
    if (c.cfg_loaded)
        mp_config_free(&c.cfg);
    curl_global_cleanup();
    return ret;
}
