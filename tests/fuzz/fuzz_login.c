/* libFuzzer target: the login state machine fed arbitrary server answers.
 * The input is split on NUL bytes into successive response bodies; the first
 * byte of each picks the HTTP status.  Whatever arrives, the flow must end
 * with a decision, never crash, leak or read out of bounds, and never decide
 * MP_OK unless the answers really form a complete, valid login. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp_json.h"
#include "mp_login.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
    const uint8_t *data;
    size_t size, pos;
};

static const long statuses[] = {200, 200, 200, 200, 400, 401, 404, 429, 500, 302};

static int perform(void *ctx, const struct mp_http_request *req, struct mp_http_response *resp)
{
    struct feed *f = ctx;
    const uint8_t *start = f->data + f->pos;
    size_t len = 0;

    (void)req;
    memset(resp, 0, sizeof(*resp));
    if (f->pos >= f->size) {
        resp->net = MP_NET_CONNECT;
        return -1;
    }
    while (f->pos + len < f->size && start[len] != 0)
        len++;
    f->pos += len + 1;
    resp->net = MP_NET_OK;
    resp->status = len ? statuses[start[0] % (sizeof(statuses) / sizeof(statuses[0]))] : 200;
    resp->body = malloc(len + 1);
    if (resp->body == NULL) {
        resp->net = MP_NET_INTERNAL;
        return -1;
    }
    if (len > 1)
        memcpy(resp->body, start + 1, len - 1);
    resp->body_len = len > 1 ? len - 1 : 0;
    resp->body[resp->body_len] = '\0';
    return 0;
}

static int ask(void *ctx, const char *prompt, char **answer)
{
    (void)ctx;
    (void)prompt;
    *answer = strdup("123456");
    return *answer ? 0 : -1;
}

static void tell(void *ctx, bool error, const char *message)
{
    (void)ctx;
    (void)error;
    (void)message;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mp_config cfg;
    static int ready;
    struct feed feed = {data, size, 0};
    struct mp_transport t = {perform, &feed};
    struct mp_conv conv = {ask, tell, NULL};
    struct mp_login_params p = {"alice", "alice@example.com", "pw", NULL, false};
    struct mp_login_result r;

    if (!ready) {
        mp_config_init(&cfg);
        mp_config_parse(&cfg, "fuzz",
                        "base_url = https://x.example/\n"
                        "project_id = ce04dfeb-96a9-49e7-abb8-098580eeed12\n",
                        NULL);
        ready = 1;
    }
    mp_login_run(&cfg, &t, &conv, NULL, &p, &r);
    mp_login_result_clear(&r);
    return 0;
}
