/*
 * medplumctl cache list [--json]
 * medplumctl cache purge USER | --all
 *
 * `list` shows the users of the account cache with their private state (last
 * online login, membership state, whether an offline verifier is stored);
 * never the verifier itself.  `purge` removes private state only: the
 * offline-login verifier, offline failure count and membership state of one
 * user (or of everyone).  The NSS entries and uid reservations are the
 * sync's and stay; a purged user simply needs an online login again.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "mp_cache.h"
#include "mp_state.h"
#include "mp_validate.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: medplumctl cache list [--json] [--config PATH]\n"
                 "       medplumctl cache purge USER | --all [--config PATH]\n\n"
                 "list   the cached users: uid, email, last online login, membership state,\n"
                 "       offline verifier present (the verifier itself is never shown)\n"
                 "purge  delete the private state of USER (or --all users): offline-login\n"
                 "       verifier, offline failure count, membership state.  NSS entries and\n"
                 "       uid reservations stay; the user needs an online login again.\n\n"
                 "exit codes: 0 ok, 1 failed, 2 usage\n");
}

struct cache_opts {
    bool json, all;
    const char *verb, *user;
};

static int parse(struct ctl *c, int argc, char **argv, struct cache_opts *o)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"all", no_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    memset(o, 0, sizeof(*o));
    while ((opt = getopt_long(argc, argv, "jac:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            o->json = true;
            break;
        case 'a':
            o->all = true;
            break;
        case 'c':
            ctl_set_config(c, optarg);
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return CTL_USAGE;
        }
    }
    if (optind < argc)
        o->verb = argv[optind++];
    if (optind < argc)
        o->user = argv[optind++];
    if (optind != argc || o->verb == NULL ||
        (strcmp(o->verb, "list") == 0 && (o->user || o->all)) ||
        (strcmp(o->verb, "purge") == 0 && (o->all == (o->user != NULL) || o->json)) ||
        (strcmp(o->verb, "list") != 0 && strcmp(o->verb, "purge") != 0)) {
        usage(stderr);
        return CTL_USAGE;
    }
    return 0;
}

static cJSON *user_json(const struct mp_cache_user *u, const struct mp_user_state *s)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddStringToObject(o, "name", u->name) ||
        !cJSON_AddNumberToObject(o, "uid", u->uid) || !cJSON_AddNumberToObject(o, "gid", u->gid) ||
        !cJSON_AddStringToObject(o, "gecos", u->gecos ? u->gecos : "") ||
        !cJSON_AddStringToObject(o, "home", u->home ? u->home : "") ||
        !cJSON_AddStringToObject(o, "shell", u->shell ? u->shell : "") ||
        !cJSON_AddStringToObject(o, "email", u->email ? u->email : "") ||
        !cJSON_AddStringToObject(o, "profile", u->profile ? u->profile : "") ||
        !(u->membership_id ? cJSON_AddStringToObject(o, "membership", u->membership_id)
                           : cJSON_AddNullToObject(o, "membership")) ||
        !cJSON_AddBoolToObject(o, "admin", u->admin) ||
        !cJSON_AddStringToObject(o, "membership_state", mp_membership_state_name(s->membership)) ||
        !cJSON_AddNumberToObject(o, "membership_checked_at", (double)s->membership_checked_at) ||
        !cJSON_AddNumberToObject(o, "last_login", (double)s->last_online_login) ||
        !cJSON_AddBoolToObject(o, "offline_verifier", s->has_verifier) ||
        !cJSON_AddNumberToObject(o, "offline_failures", s->offline_failures)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static bool add_groups(cJSON *root, const struct mp_cache_data *d)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "groups");

    for (size_t i = 0; arr != NULL && i < d->ngroups; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON *m = o ? cJSON_AddArrayToObject(o, "members") : NULL;
        bool ok = m != NULL && cJSON_AddStringToObject(o, "name", d->groups[i].name) &&
                  cJSON_AddNumberToObject(o, "gid", d->groups[i].gid);
        for (size_t j = 0; ok && j < d->groups[i].nmembers; j++)
            ok = cJSON_AddItemToArray(m, cJSON_CreateString(d->groups[i].members[j]));
        if (!ok || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            return false;
        }
    }
    return arr != NULL;
}

static bool add_reservations(cJSON *root, const struct mp_cache_data *d)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "reserved_uids");

    for (size_t i = 0; arr != NULL && i < d->nreservations; i++) {
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddStringToObject(o, "profile", d->reservations[i].profile) ||
            !cJSON_AddNumberToObject(o, "uid", d->reservations[i].uid) ||
            !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            return false;
        }
    }
    return arr != NULL;
}

static void print_row(const struct mp_cache_user *u, const struct mp_user_state *s)
{
    char last[32];

    ctl_format_time(s->last_online_login, last, sizeof(last));
    printf("%-20s %7u  %-32s %-23s %-7s %s\n", u->name, (unsigned)u->uid, u->email ? u->email : "-",
           last, s->has_verifier ? "yes" : "no", mp_membership_state_name(s->membership));
}

static int list(struct ctl *c, bool json)
{
    struct mp_cache_data d;
    cJSON *root = NULL, *users = NULL;
    char when[32];
    int ret = CTL_FAIL;

    if (mp_cache_load(c->cfg.cache_dir, &d, &c->log) != 0)
        return CTL_FAIL;
    if (json) {
        root = cJSON_CreateObject();
        users = root ? cJSON_AddArrayToObject(root, "users") : NULL;
        if (users == NULL || !cJSON_AddNumberToObject(root, "generated_at", (double)d.generated_at))
            goto out;
    } else {
        ctl_format_time(d.generated_at, when, sizeof(when));
        printf("%s/%s: %zu users, %zu groups, %zu reserved uids, written %s\n", c->cfg.cache_dir,
               MP_CACHE_FILE, d.nusers, d.ngroups, d.nreservations, when);
        printf("%-20s %7s  %-32s %-23s %-7s %s\n", "USER", "UID", "EMAIL", "LAST LOGIN", "OFFLINE",
               "MEMBERSHIP");
    }
    for (size_t i = 0; i < d.nusers; i++) {
        struct mp_user_state s;
        if (mp_state_get_user(c->cfg.cache_dir, d.users[i].name, &s, &c->log) != 0)
            memset(&s, 0, sizeof(s));
        if (!json)
            print_row(&d.users[i], &s);
        else if (!cJSON_AddItemToArray(users, user_json(&d.users[i], &s)))
            goto out;
    }
    if (json) {
        if (!add_groups(root, &d) || !add_reservations(root, &d))
            goto out;
        ctl_print_json(root);
        root = NULL;
    }
    ret = CTL_OK;
out:
    if (ret != CTL_OK)
        fprintf(stderr, "medplumctl: out of memory\n");
    cJSON_Delete(root);
    mp_cache_data_free(&d);
    return ret;
}

/* A typo must not look like success: is there anything to purge? */
static bool has_state(struct ctl *c, const char *user)
{
    struct mp_user_state st;

    if (mp_state_get_user(c->cfg.cache_dir, user, &st, &c->log) != 0)
        return true; /* unreadable: let the purge remove it */
    return st.membership != MP_MEMBERSHIP_UNKNOWN || st.membership_checked_at != 0 ||
           st.last_online_login != 0 || st.has_verifier || st.offline_failures != 0;
}

static int purge(struct ctl *c, const struct cache_opts *o)
{
    if (o->all) {
        if (mp_state_purge_all(c->cfg.cache_dir, &c->log) != 0)
            return CTL_FAIL;
        printf("removed the private state (offline verifiers, counters, membership states) "
               "of every user\n");
        return CTL_OK;
    }
    if (!mp_is_valid_username(o->user)) {
        fprintf(stderr, "medplumctl: '%s' is not a valid user name\n", o->user);
        return CTL_USAGE;
    }
    if (!has_state(c, o->user)) {
        fprintf(stderr,
                "medplumctl: %s has no private state here (no login, no sync record); "
                "nothing to purge\n",
                o->user);
        return CTL_FAIL;
    }
    if (mp_state_purge_user(c->cfg.cache_dir, o->user, &c->log) != 0)
        return CTL_FAIL;
    printf("removed the private state (offline verifier, counters, membership state) of %s\n",
           o->user);
    return CTL_OK;
}

int cmd_cache(struct ctl *c, int argc, char **argv)
{
    struct cache_opts o;
    int ret = parse(c, argc, argv, &o);

    if (ret != 0)
        return ret < 0 ? CTL_OK : ret;
    if (ctl_load_config(c) != 0)
        return CTL_FAIL;
    if (strcmp(o.verb, "list") == 0)
        return list(c, o.json);
    return purge(c, &o);
}
