/*
 * medplumctl test-login USER
 *
 * Runs what pam_medplum's authentication runs — account resolution, then
 * the Medplum login flow (login, MFA, profile choice, token, logout) — with
 * the real configuration, and prints every step and the decision, like
 * sssctl user-checks.  The password (and MFA code) are asked on the
 * terminal without echo, or read from stdin when it is not a terminal; they
 * never come from argv or the environment.  Nothing is recorded: no cache
 * entry, no offline verifier, no backoff.  It does count against Medplum's
 * per-IP login rate limit like any login.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "mp_account.h"
#include "mp_http.h"
#include "mp_login.h"
#include "mp_secret.h"
#include "mp_validate.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: medplumctl test-login [--config PATH] USER\n\n"
                 "Resolves USER like pam_medplum does and runs the full Medplum login for\n"
                 "it, printing each step and the decision.  Asks for the password (and an\n"
                 "authenticator code when Medplum wants one) on the terminal without echo,\n"
                 "or reads them from stdin, one per line, when stdin is not a terminal.\n"
                 "Records nothing (no cache entry, no offline verifier).\n\n"
                 "exit codes: 0 the login would succeed, 1 it would not, 2 usage\n");
}

/* ---- reading secrets ---- */

static char *read_line(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);

    if (n < 0) {
        mp_freezero(line, cap);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    /* getline's buffer may be larger than the text: copy and wipe it. */
    {
        char *copy = strdup(line);
        mp_freezero(line, cap);
        return copy;
    }
}

/* From /dev/tty with echo off; from stdin when stdin is not a terminal. */
static char *ask(const char *prompt)
{
    struct termios old, quiet;
    FILE *tty;
    char *answer;

    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "%s", prompt);
        answer = read_line(stdin);
        fputc('\n', stderr);
        return answer;
    }
    tty = fopen("/dev/tty", "r+e");
    if (tty == NULL)
        return NULL;
    /* Echo off before the prompt: TCSAFLUSH drops typed-ahead input, which
     * must not include an answer typed in response to the prompt. */
    tcgetattr(fileno(tty), &old);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    fprintf(tty, "%s", prompt);
    fflush(tty);
    answer = read_line(tty);
    tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    return answer;
}

static int conv_ask(void *ctx, const char *prompt, char **answer)
{
    (void)ctx;
    *answer = ask(prompt);
    return *answer ? 0 : -1;
}

static void conv_tell(void *ctx, bool error, const char *message)
{
    (void)ctx;
    printf("  [%s shown to the user] %s\n", error ? "error" : "message", message);
}

/* ---- a transport that narrates every exchange (never bodies) ---- */

struct tracer {
    struct mp_transport inner;
    int step;
};

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int traced(void *ctx, const struct mp_http_request *req, struct mp_http_response *resp)
{
    struct tracer *t = ctx;
    struct timespec t0;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    printf("  %d. %s %s ... ", ++t->step, req->method, req->path);
    fflush(stdout);
    rc = t->inner.perform(t->inner.ctx, req, resp);
    if (resp->net == MP_NET_OK)
        printf("HTTP %ld (%.0f ms)\n", resp->status, ms_since(&t0));
    else
        printf("%s: %s (%.0f ms)\n", mp_net_result_name(resp->net), resp->error, ms_since(&t0));
    fflush(stdout);
    return rc;
}

/* ---- the run ---- */

static int resolve(struct ctl *c, const char *user, struct mp_account *acct)
{
    printf("1. account resolution\n");
    if (mp_account_resolve(&c->cfg, user, acct, &c->log) != 0) {
        printf("  error: %s\n", acct->why);
        return -1;
    }
    if (acct->kind != MP_ACCOUNT_MANAGED) {
        printf("  %s is not a Medplum account: %s\n", user, acct->why);
        printf("  pam_medplum would leave it to the other modules (PAM_USER_UNKNOWN)\n");
        return -1;
    }
    printf("  Medplum email %s%s%s\n", acct->email, acct->in_cache ? ", bound to " : "",
           acct->in_cache ? acct->profile : " (from email_domain, not in the cache)");
    return 0;
}

static int run_login(struct ctl *c, const char *user, const struct mp_account *acct)
{
    struct mp_conv conv = {conv_ask, conv_tell, NULL};
    struct mp_login_params params = {0};
    struct mp_login_result result;
    struct tracer tr;
    struct mp_transport t;
    char *password;
    mp_http *http;
    mp_status st;

    printf("2. password\n");
    password = ask("Password: ");
    if (password == NULL || !mp_is_acceptable_password(password)) {
        printf("  no password, or longer than %d bytes: not sent\n", MP_PASSWORD_MAX);
        mp_secret_free(password);
        return CTL_FAIL;
    }
    if ((http = mp_http_open(&c->cfg, &c->log)) == NULL) {
        mp_secret_free(password);
        return CTL_FAIL;
    }
    tr = (struct tracer){mp_http_transport(http), 0};
    t = (struct mp_transport){traced, &tr};
    params.username = user;
    params.email = acct->email;
    params.password = password;
    params.expected_profile = acct->in_cache ? acct->profile : NULL;
    printf("3. Medplum login flow\n");
    st = mp_login_run(&c->cfg, &t, &conv, &c->log, &params, &result);
    mp_secret_free(password);
    mp_http_close(http);
    printf("4. decision: %s\n", st == MP_OK            ? "ACCEPT"
                                : st == MP_DENIED      ? "DENY (Medplum said no)"
                                : st == MP_UNAVAILABLE ? "UNAVAILABLE (could not ask Medplum)"
                                                       : "ERROR (configuration or protocol)");
    printf("  reason: %s\n", result.reason);
    if (result.user_message[0] != '\0')
        printf("  the user is told: %s\n", result.user_message);
    if (st == MP_OK)
        printf("  profile %s (%s)%s%s%s\n", result.profile, result.profile_display,
               result.membership_id[0] ? ", membership " : "", result.membership_id,
               result.mfa_used ? ", with MFA" : "");
    if (result.retry_after > 0)
        printf("  Medplum asks to wait %ld s\n", result.retry_after);
    mp_login_result_clear(&result);
    return st == MP_OK ? CTL_OK : CTL_FAIL;
}

int cmd_test_login(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mp_account acct;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (opt == 'c')
            ctl_set_config(c, optarg);
        else if (opt == 'h')
            return usage(stdout), CTL_OK;
        else
            return usage(stderr), CTL_USAGE;
    }
    if (optind + 1 != argc)
        return usage(stderr), CTL_USAGE;
    if (ctl_load_config(c) != 0)
        return CTL_FAIL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (resolve(c, argv[optind], &acct) != 0)
        return CTL_FAIL;
    return run_login(c, argv[optind], &acct);
}
