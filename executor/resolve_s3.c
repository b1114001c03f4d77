/*
 * resolve_s3.c - turning an s3:// input.path into plan files: one object
 * (HEAD) or the objects of a listing by prefix that match the key's glob.
 */
#include "plan_int.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/s3.h"
#include "../lib/util.h"
#include "source.h"

#define PATH_FIELD "input.path"

/* Where the first glob metacharacter of 'key' is, or NULL. */
static const char *
first_meta(const char *key)
{
    const char *p;

    for (p = key; *p; p++) {
        if (*p == '\\' && p[1] != '\0')
            p++;
        else if (*p == '*' || *p == '?' || *p == '[')
            return p;
    }
    return NULL;
}

/* A plan file for the object. */
static void
file_set(plan_file *f, const char *bucket, const char *key, uint64_t size,
         const char *etag)
{
    f->path = xasprintf("s3://%s/%s", bucket, key);
    f->rel = xstrdup(f->path);
    f->size_bytes = size;
    f->mtime_ns = 0;
    f->etag = xstrdup(etag ? etag : "");
}

int
plan_resolve_s3(const char *pattern, size_t len, plan_file **files,
                size_t *n_files, sh_err *err)
{
    const s3_config *c;
    char            *bucket = NULL, *key = NULL, *prefix = NULL;
    const char      *meta;
    s3_object       *objs = NULL;
    size_t           n_objs = 0, i, n = 0;
    int              rc;

    *files = NULL;
    *n_files = 0;
    if (strlen(pattern) != len) {
        return sh_err_set(err, SH_EINVAL, PATH_FIELD,
                          "input.path contains a NUL character");
    }
    rc = s3_parse_url(pattern, 0, PATH_FIELD, &bucket, &key, err);
    if (rc != 0)
        return rc;
    if (!util_utf8_valid(key, strlen(key))) {
        rc = sh_err_set(err, SH_EINVAL, PATH_FIELD,
                        "the key of input.path is not valid UTF-8");
        goto done;
    }
    if ((c = source_s3_config(err)) == NULL) {
        /* The same words, now at input.path and a fault of the spec
         * (copied first: sh_err_set writes the message it would read). */
        char msg[SH_ERR_MSG_MAX];

        snprintf(msg, sizeof msg, "%s", err->msg);
        rc = sh_err_set(err, SH_EINVAL, PATH_FIELD, "%s", msg);
        goto done;
    }
    meta = first_meta(key);
    if (meta == NULL) {
        uint64_t size;
        char    *etag = NULL;

        rc = s3_head(c, bucket, key, &size, &etag, err);
        if (rc == SH_ENOENT) {
            rc = sh_err_set(err, SH_EINVAL, PATH_FIELD, "no such object '%s'",
                            pattern);
        } else if (rc != 0) {
            err->path[0] = '\0';
            snprintf(err->path, sizeof err->path, "%s", PATH_FIELD);
        } else {
            *files = xcalloc(1, sizeof **files);
            file_set(&(*files)[0], bucket, key, size, etag);
            *n_files = 1;
        }
        free(etag);
        goto done;
    }
    prefix = xstrndup(key, (size_t)(meta - key));
    rc = s3_list(c, bucket, prefix, PLAN_MAX_FILES * 10, &objs, &n_objs, err);
    if (rc == SH_ENOENT) {
        rc = sh_err_set(err, SH_EINVAL, PATH_FIELD, "no such bucket '%s'",
                        bucket);
        goto done;
    }
    if (rc != 0) {
        snprintf(err->path, sizeof err->path, "%s", PATH_FIELD);
        goto done;
    }
    *files = xcalloc(n_objs ? n_objs : 1, sizeof **files);
    for (i = 0; i < n_objs; i++) {
        size_t klen = strlen(objs[i].key);

        if (klen > 0 && objs[i].key[klen - 1] == '/')
            continue; /* a "directory" marker */
        if (fnmatch(key, objs[i].key, FNM_PATHNAME | FNM_PERIOD) != 0)
            continue;
        if (n == PLAN_MAX_FILES) {
            rc = sh_err_set(err, SH_EINVAL, PATH_FIELD,
                            "'%s' matches more than %d objects", pattern,
                            PLAN_MAX_FILES);
            goto done;
        }
        file_set(&(*files)[n++], bucket, objs[i].key, objs[i].size_bytes,
                 objs[i].etag);
    }
    *n_files = n;
    if (n == 0) {
        rc = sh_err_set(err, SH_EINVAL, PATH_FIELD, "no object matches '%s'",
                        pattern);
    }

done:
    if (rc != 0 && *files != NULL) {
        for (i = 0; i < n; i++) {
            free((*files)[i].path);
            free((*files)[i].rel);
            free((*files)[i].etag);
        }
        free(*files);
        *files = NULL;
        *n_files = 0;
    }
    s3_objects_free(objs, n_objs);
    free(prefix);
    free(bucket);
    free(key);
    return rc;
}
