/*
 * What a sync changed, as text for people or JSON for scripts.
 */
#ifndef SYNC_REPORT_H
#define SYNC_REPORT_H

#include <stdbool.h>

#include "mp_cache.h"
#include "mp_directory.h"
#include "mp_idmap.h"

struct sync_report {
    const char *result; /* "ok", "failed", "refused" */
    const char *message;
    bool dry_run;
    const struct mp_directory *dir;       /* NULL when the fetch failed */
    const struct mp_cache_data *old;      /* NULL when not loaded */
    const struct mp_idmap_result *mapped; /* NULL when not mapped */
};

void sync_report_print(const struct sync_report *r, bool json);

#endif
