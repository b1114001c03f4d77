/*
 * artifacts.c - a job's artifacts: the extra outputs some steps write
 * beside the result (train_naive_bayes: "report", JSON, and "model",
 * binary), stored in <spool>/jobs/<id>/artifacts/<name>.
 *
 *   GET /v1/jobs/{id}/artifacts          {"artifacts": [{"name", "bytes"}]}
 *   GET /v1/jobs/{id}/artifacts/{name}   the file, streamed from disk
 *
 * With SHEAF_STORE (service/store.h), a node that does not hold a job's
 * artifacts (another node ran it) lists and serves those in the store:
 * streamed, or a redirect to a presigned URL with SHEAF_S3_PRESIGN=1.
 *
 * Both answer 404 for an unknown job (or another tenant's) and 409 until
 * the job has succeeded; a name that is not one of the job's artifacts is
 * a 404 that lists those it has. Artifact names are [a-z0-9_-]+, so a
 * file under a temporary name ("report.tmp") is never listed or served.
 */
#include "api_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../service/log.h"
#include "../service/spool.h"
#include "../service/store.h"

/* Non-zero when 's' is a possible artifact name: [a-z0-9_-]+. */
static int
artifact_name_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
              || c == '-'))
            return 0;
    }
    return i > 0;
}

static int
cmp_by_name(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;

    return strcmp(json_string_value(json_object_get(x, "name")),
                  json_string_value(json_object_get(y, "name")));
}

/*
 * SHEAF_STORE: the artifacts of job 'id' in the store, appended to 'out'
 * as {"name", "bytes"} in name order (none when the store is off or
 * unreachable: logged).
 */
static void
artifact_list_store(const char *id, json_t *out)
{
    s3_object *objs = NULL;
    size_t     n = 0;
    sh_err     err;

    if (store_list_artifacts(id, &objs, &n, &err) != 0)
        log_warn("artifacts of job %s in the store: %s", id, err.msg);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, json_pack("{s:s, s:I}", "name", objs[i].key,
                                             "bytes",
                                             (json_int_t)objs[i].size_bytes));
    s3_objects_free(objs, n);
}

/*
 * The artifacts of job 'id' as a new array of {"name", "bytes"}, sorted by
 * name: the regular files of its artifacts directory whose names are
 * artifact names or, when this node has none (another node ran the job),
 * those in the store. A missing directory gives an empty array.
 */
static json_t *
artifact_list(const config *cfg, const char *id)
{
    char          *dir = spool_artifacts_dir(cfg->spool, id);
    DIR           *dh = opendir(dir);
    struct dirent *de;
    json_t       **items = NULL, *out = json_array();
    size_t         n = 0;

    if (dh == NULL) {
        if (errno != ENOENT)
            log_warn("artifacts of job %s: open %s: %s", id, dir,
                     strerror(errno));
        free(dir);
        artifact_list_store(id, out);
        return out;
    }
    while ((de = readdir(dh)) != NULL) {
        struct stat st;

        if (!artifact_name_ok(de->d_name)
            || fstatat(dirfd(dh), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0
            || !S_ISREG(st.st_mode))
            continue;
        items = xrealloc(items, (n + 1) * sizeof *items);
        items[n++] = json_pack("{s:s, s:I}", "name", de->d_name, "bytes",
                               (json_int_t)st.st_size);
    }
    closedir(dh);
    if (n > 0)
        qsort(items, n, sizeof *items, cmp_by_name);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, items[i]);
    free(items);
    free(dir);
    if (n == 0)
        artifact_list_store(id, out);
    return out;
}

json_t *
api_artifact_names(const config *cfg, const char *id)
{
    json_t *list = artifact_list(cfg, id), *names, *v;
    size_t  i;

    if (json_array_size(list) == 0) {
        json_decref(list);
        return NULL;
    }
    names = json_array();
    json_array_foreach(list, i, v)
        json_array_append(names, json_object_get(v, "name"));
    json_decref(list);
    return names;
}

/*
 * Check that r->id names a job of r->tenant that has succeeded. Returns 0,
 * or the status of the error reply (404, 409, 503...).
 */
static int
artifact_job_check(api_req *r)
{
    db    *d;
    db_job job;
    sh_err err;
    int    rc;

    sh_err_clear(&err);
    if ((d = api_db_get(r->a, API_POOL_WAIT_MS, &err)) == NULL)
        return api_error_sh(r, &err, 0);
    rc = api_db_put(r->a, d, db_job_get(d, r->tenant, r->id, &job, &err));
    if (rc < 0)
        return api_error_sh(r, &err, 0);
    if (strcmp(job.status, "succeeded") != 0)
        rc = api_error(r, MHD_HTTP_CONFLICT, "wrong_state", "",
                       "job %s is %s; its artifacts can be fetched once it "
                       "has succeeded",
                       r->id, job.status);
    db_job_clear(&job);
    return rc;
}

int
api_job_artifacts(api_req *r)
{
    int status;

    if ((status = artifact_job_check(r)) != 0)
        return status;
    return api_reply(r, MHD_HTTP_OK,
                     json_pack("{s:o}", "artifacts",
                               artifact_list(r->a->cfg, r->id)));
}

/* 404: job r->id has no artifact r->name; the message lists those it has. */
static int
artifact_not_found(api_req *r)
{
    json_t *names = api_artifact_names(r->a->cfg, r->id), *v;
    strbuf  sb = {0};
    size_t  i;
    int     status;

    json_array_foreach(names, i, v)
    {
        if (i > 0)
            sb_puts(&sb, ", ");
        sb_puts(&sb, json_string_value(v));
    }
    status = api_error(r, MHD_HTTP_NOT_FOUND, "not_found", "",
                       "job %s has no artifact '%s'; it has %s%s", r->id,
                       r->name, sb.len ? ": " : "none", sb.len ? sb.data : "");
    sb_free(&sb);
    json_decref(names);
    return status;
}

/*
 * SHEAF_STORE: artifact r->name of job r->id from the store. Returns the
 * status of the reply made (302 to a presigned URL with
 * SHEAF_S3_PRESIGN=1, or the 404 when it is not there either), or 0 with
 * *resp (NULL when libmicrohttpd cannot make one) streaming the object.
 */
static int
artifact_from_store(api_req *r, struct MHD_Response **resp)
{
    const s3_config *c;
    const char      *bucket;
    char            *key, *etag = NULL;
    uint64_t         size = 0;
    sh_err           err;
    int              rc, status = 0;

    *resp = NULL;
    if (!store_get(&c, &bucket, NULL))
        return artifact_not_found(r);
    key = store_artifact_key(r->id, r->name);
    rc = s3_head(c, bucket, key, &size, &etag, &err);
    if (rc == SH_ENOENT) {
        status = artifact_not_found(r);
    } else if (rc != 0) {
        log_warn("job %s: artifact %s in the store: %s", r->id, r->name,
                 err.msg);
        status = api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "",
                           "the object store cannot be reached; try "
                           "again");
    } else if ((status = api_store_redirect(r, key)) == 0) {
        *resp = size > 0
                    ? api_store_stream(key, etag, 0, size - 1)
                    : MHD_create_response_from_buffer(0, "",
                                                      MHD_RESPMEM_PERSISTENT);
    }
    free(etag);
    free(key);
    return status;
}

int
api_job_artifact(api_req *r)
{
    struct MHD_Response *resp;
    struct stat          st;
    char                *path = NULL, disp[API_NAME_MAX + 48];
    int                  status, fd = -1;

    if ((status = artifact_job_check(r)) != 0)
        return status;
    if (!artifact_name_ok(r->name))
        return artifact_not_found(r);
    path = spool_artifact_path(r->a->cfg->spool, r->id, r->name);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        /* SHEAF_STORE: another node ran the job. */
        status = artifact_from_store(r, &resp);
        if (status != 0)
            goto done;
    } else if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd < 0 && errno != ENOENT && errno != ELOOP)
            log_warn("artifact: open %s: %s", path, strerror(errno));
        status = artifact_not_found(r);
        goto done;
    } else {
        resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
        if (resp != NULL)
            fd = -1; /* the response owns it now */
    }
    if (resp == NULL) {
        status = api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "",
                           "cannot make the response");
        goto done;
    }
    if (strcmp(r->name, "report") == 0) {
        api_header_set(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    } else {
        api_header_set(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                       "application/octet-stream");
        snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", r->name);
        api_header_set(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
    }
    status = api_reply(r, MHD_HTTP_OK, NULL);
    r->reply = resp;

done:
    if (fd >= 0)
        close(fd);
    free(path);
    return status;
}
