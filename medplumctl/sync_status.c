#include "sync_status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "mp_config.h"
#include "mp_json.h"

#define MAX_SIZE 8192

static void copy_string(const cJSON *root, const char *key, char *out, size_t outlen)
{
    const char *v = mp_json_string(root, key);

    mp_sanitize_for_log(v ? v : "", out, outlen);
}

static long long number(const cJSON *root, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);

    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (long long)v->valuedouble : 0;
}

int sync_status_read(const char *cache_dir, struct sync_status *st, const mp_logger *log)
{
    char path[4096], buf[MAX_SIZE + 1];
    ssize_t n;
    cJSON *root;
    int fd;

    memset(st, 0, sizeof(*st));
    snprintf(path, sizeof(path), "%s/%s", cache_dir, SYNC_STATUS_FILE);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? 1 : -1;
    if (mp_check_file_security(fd, path, false, log) != 0) {
        close(fd);
        return -1;
    }
    n = read(fd, buf, MAX_SIZE);
    close(fd);
    if (n <= 0 || (root = mp_json_parse_object(buf, (size_t)n)) == NULL) {
        mp_log(log, LOG_WARNING, "%s: not a sync status record", path);
        return -1;
    }
    st->attempt_time = number(root, "attempt_time");
    copy_string(root, "result", st->result, sizeof(st->result));
    copy_string(root, "message", st->message, sizeof(st->message));
    copy_string(root, "source", st->source, sizeof(st->source));
    st->membership_known = mp_json_true(root, "membership_known");
    st->success_time = number(root, "success_time");
    st->users = (long)number(root, "users");
    st->skipped = (long)number(root, "skipped");
    cJSON_Delete(root);
    return 0;
}

static cJSON *to_json(const struct sync_status *st)
{
    cJSON *root = cJSON_CreateObject();

    if (root == NULL || !cJSON_AddNumberToObject(root, "attempt_time", (double)st->attempt_time) ||
        !cJSON_AddStringToObject(root, "result", st->result) ||
        !cJSON_AddStringToObject(root, "message", st->message) ||
        !cJSON_AddStringToObject(root, "source", st->source) ||
        !cJSON_AddBoolToObject(root, "membership_known", st->membership_known) ||
        !cJSON_AddNumberToObject(root, "success_time", (double)st->success_time) ||
        !cJSON_AddNumberToObject(root, "users", (double)st->users) ||
        !cJSON_AddNumberToObject(root, "skipped", (double)st->skipped)) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* temp file + fsync + rename, like the cache itself. */
int sync_status_write(const char *cache_dir, const struct sync_status *st, const mp_logger *log)
{
    char tmp[4096], path[4096];
    cJSON *root = to_json(st);
    char *text = root ? cJSON_Print(root) : NULL;
    int ret = -1, fd = -1;
    size_t len;

    cJSON_Delete(root);
    if (text == NULL)
        goto out;
    snprintf(path, sizeof(path), "%s/%s", cache_dir, SYNC_STATUS_FILE);
    snprintf(tmp, sizeof(tmp), "%s/.%s.%ld", cache_dir, SYNC_STATUS_FILE, (long)getpid());
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    len = strlen(text);
    if (fd < 0 || fchmod(fd, 0644) != 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        mp_log(log, LOG_WARNING, "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        mp_log(log, LOG_WARNING, "%s: cannot rename: %s", path, strerror(errno));
        goto out;
    }
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    if (ret != 0)
        unlink(tmp);
    free(text);
    return ret;
}
