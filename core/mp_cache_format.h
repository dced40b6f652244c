/*
 * On-disk layout of cache_dir/accounts.db, format version 1.
 *
 * One mmap-able file, little-endian, every field a 32-bit (or 64-bit)
 * unsigned integer at a 4-byte aligned offset.  Readers never trust it: every
 * offset, count and index is checked against the file size before use (see
 * mp_cache_reader.c), so a truncated or hostile file is refused, never read
 * out of bounds.
 *
 *   header      MPC_HEADER_SIZE bytes (layout below)
 *   strtab      NUL-terminated strings; offset 0 is always "", the last
 *               byte is always NUL (so any offset < strtab_size is a
 *               terminated string).  MPC_NOSTR stands for "no string".
 *   users       nusers   x MPC_USER_SIZE   records
 *   groups      ngroups  x MPC_GROUP_SIZE  records
 *   members     nmembers x u32 string offsets (group member names)
 *   resv        nresv    x MPC_RESV_SIZE   records (profile -> uid)
 *   mship       nmship   x MPC_MSHIP_SIZE  records (member name -> groups),
 *               for initgroups without scanning every group
 *   mship_grp   nmship_grp x u32 group record indices
 *   4 or 5 hash indexes (user name, uid, group name, gid, member name):
 *               nslots u32 slots, nslots a power of two >= 2 x count;
 *               slot value 0 = empty, else record index + 1; open addressing
 *               with linear probing from hash & (nslots - 1).
 *
 * The CRC-32 (IEEE, as zlib) covers bytes [MPC_CRC_START, file_size):
 * everything after the crc field itself.  Magic, version, header_size and
 * file_size are checked exactly, so they need no checksum.
 */
#ifndef MP_CACHE_FORMAT_H
#define MP_CACHE_FORMAT_H

#include <stdint.h>

#define MPC_FILE_NAME "accounts.db" /* == MP_CACHE_FILE */
#define MPC_MAGIC "MPLMCACH"
#define MPC_MAGIC_LEN 8
#define MPC_VERSION 1u
#define MPC_HEADER_SIZE 160u
#define MPC_CRC_START 24u
/* Hard ceiling on the file: keeps all arithmetic far from overflow and a
 * hostile file from making a reader walk gigabytes. */
#define MPC_MAX_FILE_SIZE (512u * 1024u * 1024u)
#define MPC_NOSTR 0xffffffffu

/* Header field offsets (bytes). */
enum {
    MPC_H_MAGIC = 0,          /* 8 bytes MPC_MAGIC */
    MPC_H_VERSION = 8,        /* u32 */
    MPC_H_HEADER_SIZE = 12,   /* u32 == MPC_HEADER_SIZE */
    MPC_H_FILE_SIZE = 16,     /* u32 total bytes */
    MPC_H_CRC = 20,           /* u32 CRC-32 of [MPC_CRC_START, file_size) */
    MPC_H_GENERATED_AT = 24,  /* u64 (two's complement int64) unix time */
    MPC_H_STRTAB_OFF = 32,    /* u32, then u32 strtab_size */
    MPC_H_USERS_OFF = 40,     /* u32 offset, u32 count */
    MPC_H_GROUPS_OFF = 48,    /* u32 offset, u32 count */
    MPC_H_MEMBERS_OFF = 56,   /* u32 offset, u32 count */
    MPC_H_RESV_OFF = 64,      /* u32 offset, u32 count */
    MPC_H_MSHIP_OFF = 72,     /* u32 offset, u32 count */
    MPC_H_MSHIP_GRP_OFF = 80, /* u32 offset, u32 count */
    MPC_H_IDX_USER_NAME = 88, /* u32 offset, u32 nslots */
    MPC_H_IDX_UID = 96,
    MPC_H_IDX_GROUP_NAME = 104,
    MPC_H_IDX_GID = 112,
    MPC_H_IDX_MSHIP_NAME = 120,
    /* 128..159 reserved, zero */
};

/* User record: 12 x u32. */
#define MPC_USER_SIZE 48u
enum {
    MPC_U_NAME = 0,
    MPC_U_UID = 4,
    MPC_U_GID = 8,
    MPC_U_GECOS = 12,
    MPC_U_HOME = 16,
    MPC_U_SHELL = 20,
    MPC_U_EMAIL = 24,
    MPC_U_PROFILE = 28,
    MPC_U_MEMBERSHIP = 32,
    MPC_U_FLAGS = 36, /* bit 0: admin */
    /* 40, 44 reserved, zero */
};
#define MPC_UF_ADMIN 1u

/* Group record: name, gid, first member index, member count. */
#define MPC_GROUP_SIZE 16u
enum { MPC_G_NAME = 0, MPC_G_GID = 4, MPC_G_FIRST = 8, MPC_G_COUNT = 12 };

/* Reservation record: profile string, uid. */
#define MPC_RESV_SIZE 8u
enum { MPC_R_PROFILE = 0, MPC_R_UID = 4 };

/* Membership record: member name, first mship_grp index, count. */
#define MPC_MSHIP_SIZE 12u
enum { MPC_M_NAME = 0, MPC_M_FIRST = 4, MPC_M_COUNT = 8 };

/* Index identifiers (order of the index fields in the header). */
enum mpc_index {
    MPC_IDX_USER_NAME = 0,
    MPC_IDX_UID,
    MPC_IDX_GROUP_NAME,
    MPC_IDX_GID,
    MPC_IDX_MSHIP_NAME,
    MPC_IDX_COUNT
};

/* Hashes shared by writer and reader (a mismatch is a format change). */
static inline uint32_t mpc_hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    while (*s != '\0') {
        h ^= (uint8_t)*s++;
        h *= 16777619u;
    }
    return h;
}

static inline uint32_t mpc_hash_id(uint32_t x)
{
    /* murmur3 finaliser: consecutive uids spread over the table */
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

#endif
