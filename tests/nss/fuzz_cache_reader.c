/*
 * libFuzzer target for the cache reader: arbitrary bytes as accounts.db.
 * The harness repairs the size field and checksum of inputs that start
 * with the magic, so the fuzzer explores the structure checks and the
 * lookups rather than stopping at the CRC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_cache_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Touches every byte a string spans, so ASan sees an overrun. */
static size_t touch(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

static void walk(const struct mpc_view *v)
{
    struct mpc_user u;
    struct mpc_group g;
    struct mpc_resv r;
    const char *m;
    uint32_t first, count;
    size_t sum = 0;

    for (uint32_t i = 0; i < v->nusers && i < 4096; i++) {
        if (mpc_user_at(v, i, &u) != MPC_FOUND)
            continue;
        sum += touch(u.name) + touch(u.gecos) + touch(u.home) + touch(u.shell) + touch(u.email) +
               touch(u.profile) + touch(u.membership);
        if (mpc_user_by_name(v, u.name, &u) == MPC_FOUND)
            sum += touch(u.home);
        mpc_user_by_uid(v, u.uid, &u);
        if (mpc_member_groups(v, u.name, &first, &count) == MPC_FOUND)
            for (uint32_t k = 0; k < count && k < 4096; k++)
                if (mpc_member_group_at(v, first + k, &g) == MPC_FOUND)
                    sum += touch(g.name);
    }
    for (uint32_t i = 0; i < v->ngroups && i < 4096; i++) {
        if (mpc_group_at(v, i, &g) != MPC_FOUND)
            continue;
        for (uint32_t j = 0; j < g.count && j < 4096; j++)
            if (mpc_group_member(v, &g, j, &m) == MPC_FOUND)
                sum += touch(m);
        mpc_group_by_name(v, g.name, &g);
        mpc_group_by_gid(v, g.gid, &g);
    }
    for (uint32_t i = 0; i < v->nresv && i < 4096; i++)
        if (mpc_resv_at(v, i, &r) == MPC_FOUND)
            sum += touch(r.profile);
    mpc_user_by_name(v, "alice", &u);
    mpc_user_by_uid(v, 5001, &u);
    mpc_group_by_name(v, "medstaff", &g);
    mpc_group_by_gid(v, 6000, &g);
    mpc_member_groups(v, "alice", &first, &count);
    if (sum == (size_t)-1)
        abort(); /* keeps the walk from being optimised away */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *img = malloc(size ? size : 1);
    struct mpc_view v;
    char why[MPC_WHY_LEN];

    if (img == NULL)
        return 0;
    memcpy(img, data, size);
    if (size >= MPC_HEADER_SIZE && memcmp(img, MPC_MAGIC, MPC_MAGIC_LEN) == 0) {
        put32(img + MPC_H_FILE_SIZE, (uint32_t)size);
        put32(img + MPC_H_CRC, mpc_crc32(img + MPC_CRC_START, size - MPC_CRC_START));
    }
    if (mpc_view_init(&v, img, size, why, sizeof(why)) == 0) {
        mpc_view_check_all(&v, why, sizeof(why));
        walk(&v);
    }
    free(img);
    return 0;
}
