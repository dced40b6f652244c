/*
 * The project directory as medplumctl sync sees it: who may have an account.
 *
 * Source, in this order:
 *   1. ProjectMembership?project=..&profile-type=Practitioner
 *        &_include=ProjectMembership:profile&_sort=_lastUpdated&_count=N
 *      (needs an admin client membership, contract §9.2); gives membership
 *      state (active, admin) and the Practitioners.
 *   2. on 403: Practitioner?_sort=_lastUpdated&_count=N (a client whose
 *      AccessPolicy reads Practitioner only); membership state is unknown.
 *
 * Every page's `next` link is followed as Medplum wrote it (cursor or
 * offset; only its base is replaced when Medplum's public URL differs from
 * base_url).  _sort=_lastUpdated makes Medplum page by cursor, which is not
 * bound by the 10,000 `_offset` ceiling.  Entries repeated across pages are
 * counted once; a page that brings nothing new while promising more ends the
 * run with an error rather than a loop.
 *
 * Facts of a real 5.0.10 server this relies on: ProjectMembership has no
 * `active`/`admin` search parameters (so everything is fetched and a missing
 * `active` means active, as invited memberships carry none), and `admin`
 * appears only when true.
 */
#ifndef MP_DIRECTORY_H
#define MP_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "mp_config.h"
#include "mp_hostauth.h"
#include "mp_http.h"
#include "mp_log.h"
#include "mp_status.h"

/* Largest page asked for; halved (down to MP_DIR_PAGE_MIN) when a page is
 * over the HTTP body limit.  Medplum fails _include searches whose matches
 * plus includes exceed 1000 entries, so this must stay <= 500. */
#define MP_DIR_PAGE_SIZE 200
#define MP_DIR_PAGE_MIN 25
#define MP_DIR_MAX_PAGES 20000

struct mp_dir_ident {
    char *system;
    char *value;
};

struct mp_dir_entry {
    char *practitioner_id;      /* bare UUID */
    char *profile;              /* "Practitioner/<id>" */
    char *membership_id;        /* NULL without a membership (Practitioner source) */
    bool active;                /* membership active (absent = true); Practitioner source: true */
    bool admin;                 /* membership admin: true */
    bool practitioner_found;    /* the Practitioner came with the result */
    bool practitioner_inactive; /* Practitioner.active == false */
    char *login_email;          /* ProjectMembership.user.display when it is an email */
    char *telecom_email;        /* first Practitioner telecom with system "email" */
    char *name;                 /* Practitioner name as text (unsanitised), or NULL */
    char *profile_display;      /* ProjectMembership.profile.display, or NULL */
    struct mp_dir_ident *prac_ids; /* Practitioner.identifier */
    size_t nprac_ids;
    struct mp_dir_ident *member_ids; /* ProjectMembership.identifier */
    size_t nmember_ids;
};

enum mp_dir_source {
    MP_DIR_SOURCE_MEMBERSHIPS = 0, /* membership state known */
    MP_DIR_SOURCE_PRACTITIONERS,   /* read-only fallback: membership state unknown */
};

struct mp_directory {
    enum mp_dir_source source;
    struct mp_dir_entry *entries;
    size_t nentries;
    size_t pages;              /* pages fetched */
    size_t malformed;          /* entries ignored because a field had the wrong type */
    char fallback_reason[160]; /* why the Practitioner source was used */

    /* parse state (internal) */
    size_t cap;
    struct mp_dir_entry *pracs; /* included Practitioners, joined at the end */
    size_t npracs, pracs_cap;
};

/* Fetches the whole directory.  On anything but MP_OK, dir is empty and
 * reason says why; a failed or partial fetch never yields a partial list. */
mp_status mp_directory_fetch(struct mp_directory *dir, const struct mp_config *cfg,
                             const struct mp_transport *transport, const struct mp_hostauth *ha,
                             const mp_logger *log, char *reason, size_t reason_len);

/* Parsing, exposed for unit tests: adds one searchset page (memberships and
 * included Practitioners, or Practitioners) to dir, and returns its `next`
 * link (malloc'd) or NULL.  *added counts entries not seen before.  Returns
 * 0, or -1 with reason when the page is not a searchset Bundle. */
int mp_directory_add_page(struct mp_directory *dir, const struct mp_config *cfg, const char *body,
                          size_t len, char **next, size_t *added, const mp_logger *log,
                          char *reason, size_t reason_len);

/* Joins memberships with their Practitioners once every page is in. */
int mp_directory_finish(struct mp_directory *dir);

/* Value of the first identifier with that system, or NULL. */
const char *mp_dir_ident_find(const struct mp_dir_ident *ids, size_t n, const char *system);

void mp_directory_free(struct mp_directory *dir);

#endif
