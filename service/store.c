/*
 * store.c - results uploaded to object storage (see store.h).
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fsys.h"
#include "../lib/util.h"
#include "spool.h"

#define STORE_PIECE_BYTES (8u << 20)      /* S3 wants parts of >= 5 MiB */
#define STORE_LIST_HEAD   "sheaf-files 1" /* first line of an attempt's list */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int            g_on;
static s3_config      g_cfg;
static char          *g_bucket;
static char          *g_prefix;

static void
store_init(void)
{
    const char *url = getenv("SHEAF_STORE");
    sh_err      err;
    size_t      n;

    if (url == NULL || !s3_is_url(url))
        return;
    if (s3_parse_url(url, 1, "", &g_bucket, &g_prefix, &err) != 0) {
        fprintf(stderr,
                "sheafd: SHEAF_STORE: %s; results stay in the "
                "spool\n",
                err.msg);
        return;
    }
    if (s3_config_from_env(&g_cfg, &err) != 0) {
        fprintf(stderr,
                "sheafd: SHEAF_STORE: %s; results stay in the "
                "spool\n",
                err.msg);
        return;
    }
    n = strlen(g_prefix);
    while (n > 0 && g_prefix[n - 1] == '/')
        g_prefix[--n] = '\0';
    g_on = 1;
}

int
store_get(const s3_config **cfg, const char **bucket, const char **prefix)
{
    pthread_once(&g_once, store_init);
    if (!g_on)
        return 0;
    if (cfg)
        *cfg = &g_cfg;
    if (bucket)
        *bucket = g_bucket;
    if (prefix)
        *prefix = g_prefix;
    return 1;
}

char *
store_result_key(const char *job_id)
{
    const char *prefix = "";

    store_get(NULL, NULL, &prefix);
    return xasprintf("%s%sresults/%s/result", prefix, prefix[0] ? "/" : "",
                     job_id);
}

/*
 * Upload the 'n_parts' files 'parts', concatenated, as object 'key': one
 * multipart upload in pieces of STORE_PIECE_BYTES, aborted when it fails
 * (no partial object). Returns 0 or the upload's error.
 */
static int
upload_files(const s3_config *c, const char *bucket, const char *key,
             const char *const *parts, size_t n_parts, sh_err *err)
{
    char      *buf = NULL;
    s3_upload *u = NULL;
    size_t     i, fill = 0, sent = 0;
    int        rc = 0, fd = -1;

    if ((u = s3_upload_begin(c, bucket, key, err)) == NULL) {
        rc = err->code ? err->code : SH_EIO;
        goto done;
    }
    buf = xmalloc(STORE_PIECE_BYTES);
    for (i = 0; rc == 0 && i < n_parts; i++) {
        ssize_t k;

        fd = open(parts[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = sh_err_set(err, SH_EIO, "", "cannot open %s: %s", parts[i],
                            strerror(errno));
        }
        while (rc == 0
               && (k = read(fd, buf + fill, STORE_PIECE_BYTES - fill)) != 0) {
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                rc = sh_err_set(err, SH_EIO, "", "cannot read %s: %s", parts[i],
                                strerror(errno));
                break;
            }
            fill += (size_t)k;
            if (fill == STORE_PIECE_BYTES) {
                rc = s3_upload_part(u, buf, fill, err);
                fill = 0;
                sent++;
            }
        }
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    /* The last piece (the only one of an empty result: one empty part). */
    if (rc == 0 && (fill > 0 || sent == 0))
        rc = s3_upload_part(u, buf, fill, err);
    if (rc == 0)
        rc = s3_upload_complete(u, err);

done:
    if (u != NULL && rc != 0) {
        sh_err keep = *err;

        s3_upload_abort(u, NULL);
        *err = keep;
    }
    s3_upload_free(u);
    free(buf);
    return rc;
}

int
store_publish_result(const char *job_id, const char *const *parts,
                     size_t n_parts, sh_err *err)
{
    const s3_config *c;
    const char      *bucket;
    char            *key;
    int              rc;

    if (!store_get(&c, &bucket, NULL))
        return 0;
    key = store_result_key(job_id);
    rc = upload_files(c, bucket, key, parts, n_parts, err);
    free(key);
    return rc;
}

/* ---- shuffle files ---------------------------------------------------- */

/* The last component of 'path'. */
static const char *
base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? slash + 1 : path;
}

/* The key of file 'name' of job 'job_id''s shuffle files; the caller
 * frees it. */
static char *
shuffle_key(const char *job_id, const char *name)
{
    const char *prefix = "";

    store_get(NULL, NULL, &prefix);
    return xasprintf("%s%sspool/%s/%s", prefix, prefix[0] ? "/" : "", job_id,
                     name);
}

/* The key of the list of the files of attempt 'base'; the caller frees
 * it. */
static char *
list_key(const char *job_id, const char *base)
{
    char *name = xasprintf("%s@files", base);
    char *key = shuffle_key(job_id, name);

    free(name);
    return key;
}

/* Read all of file 'path' (at most 'max' bytes) into *data (malloc'ed,
 * NUL-terminated) and *len. 0 or SH_EIO. */
static int
slurp(const char *path, size_t max, char **data, size_t *len, sh_err *err)
{
    struct stat st;
    char       *buf = NULL;
    size_t      got = 0;
    int         fd, rc = 0;

    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || (size_t)st.st_size > max) {
        rc = sh_err_set(err, SH_EIO, "", "cannot read %s: %s", path,
                        fd < 0 ? strerror(errno) : "too large");
        goto done;
    }
    buf = xmalloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = sh_err_set(err, SH_EIO, "", "cannot read %s: %s", path,
                            k < 0 ? strerror(errno) : "short read");
            goto done;
        }
        got += (size_t)k;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
done:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* Upload file 'path' as 'key': one PUT up to a piece, else a multipart
 * upload. 0 or an error. */
static int
put_file(const s3_config *c, const char *bucket, const char *path,
         const char *key, sh_err *err)
{
    struct stat st;
    s3_upload  *u = NULL;
    char       *buf = NULL;
    size_t      len, fill = 0;
    int         rc = 0, fd = -1;

    if (stat(path, &st) < 0)
        return sh_err_set(err, SH_EIO, "", "cannot stat %s: %s", path,
                          strerror(errno));
    if ((uint64_t)st.st_size <= STORE_PIECE_BYTES) {
        if ((rc = slurp(path, STORE_PIECE_BYTES, &buf, &len, err)) == 0)
            rc = s3_put(c, bucket, key, buf, len, err);
        free(buf);
        return rc;
    }
    if ((u = s3_upload_begin(c, bucket, key, err)) == NULL)
        return err->code ? err->code : SH_EIO;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = sh_err_set(err, SH_EIO, "", "cannot open %s: %s", path,
                        strerror(errno));
        goto done;
    }
    buf = xmalloc(STORE_PIECE_BYTES);
    for (;;) {
        ssize_t k = read(fd, buf + fill, STORE_PIECE_BYTES - fill);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = sh_err_set(err, SH_EIO, "", "cannot read %s: %s", path,
                            strerror(errno));
            goto done;
        }
        fill += (size_t)k;
        if (fill == STORE_PIECE_BYTES || (k == 0 && fill > 0)) {
            if ((rc = s3_upload_part(u, buf, fill, err)) != 0)
                goto done;
            fill = 0;
        }
        if (k == 0)
            break;
    }
    rc = s3_upload_complete(u, err);
done:
    if (u != NULL && rc != 0) {
        sh_err keep = *err;

        s3_upload_abort(u, NULL);
        *err = keep;
    }
    s3_upload_free(u);
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* Is directory entry 'name' a file of the attempt named 'base'? */
static int
is_attempt_file(const char *name, const char *base)
{
    size_t n = strlen(base);

    return strncmp(name, base, n) == 0 && (name[n] == '\0' || name[n] == '.');
}

int
store_put_outputs(const char *job_id, const char *prefix, sh_err *err)
{
    const s3_config *c;
    const char      *bucket, *base = base_name(prefix);
    char            *dir = NULL, *key = NULL;
    strbuf           list;
    DIR             *dh;
    struct dirent   *de;
    int              rc = 0;

    if (!store_get(&c, &bucket, NULL))
        return 0;
    memset(&list, 0, sizeof list);
    /* A first line, so that the list is never an empty object (an
     * attempt may write no file; s3rver answers a ranged GET of an empty
     * object with a byte it does not send). */
    sb_puts(&list, STORE_LIST_HEAD "\n");
    dir = xstrndup(prefix, (size_t)(base - prefix));
    if ((dh = opendir(dir)) == NULL) {
        rc = sh_err_set(err, SH_EIO, "", "cannot list %s: %s", dir,
                        strerror(errno));
        goto done;
    }
    while (rc == 0 && (de = readdir(dh)) != NULL) {
        char       *path;
        struct stat st;

        if (!is_attempt_file(de->d_name, base))
            continue;
        path = xasprintf("%s%s", dir, de->d_name);
        key = shuffle_key(job_id, de->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            rc = put_file(c, bucket, path, key, err);
            sb_printf(&list, "%s\n", de->d_name);
        }
        free(key);
        key = NULL;
        free(path);
    }
    closedir(dh);
    if (rc == 0) {
        key = list_key(job_id, base);
        rc = s3_put(c, bucket, key, list.data, list.len, err);
    }
done:
    sb_free(&list);
    free(key);
    free(dir);
    return rc;
}

void
store_drop_outputs(const char *job_id, const char *prefix)
{
    const s3_config *c;
    const char      *bucket, *base = base_name(prefix);
    char            *pre;
    s3_object       *objs = NULL;
    size_t           n = 0;
    sh_err           err;

    if (!store_get(&c, &bucket, NULL))
        return;
    pre = shuffle_key(job_id, base);
    if (s3_list(c, bucket, pre, 100000, &objs, &n, &err) != 0) {
        fprintf(stderr, "sheafd: store: listing %s: %s\n", pre, err.msg);
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const char *rest = objs[i].key + strlen(pre);

        if ((rest[0] == '\0' || rest[0] == '.' || rest[0] == '@')
            && s3_delete(c, bucket, objs[i].key, &err) != 0)
            fprintf(stderr, "sheafd: store: deleting %s: %s\n", objs[i].key,
                    err.msg);
    }
    s3_objects_free(objs, n);
    free(pre);
}

/* Download object 'key' to file 'path' (through a temporary name in the
 * same directory, renamed at the end); *bytes grows by its size. 0 or an
 * error. */
static int
get_file(const s3_config *c, const char *bucket, const char *key,
         const char *path, uint64_t *bytes, sh_err *err)
{
    s3_stream *s = s3_stream_open(c, bucket, key, 0, UINT64_MAX, NULL);
    char      *tmp = xasprintf("%s.fetch%ld", path, (long)getpid());
    char      *buf = xmalloc(256 * 1024);
    int        fd, rc = 0;
    ssize_t    k;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = sh_err_set(err, SH_EIO, "", "cannot create %s: %s", tmp,
                        strerror(errno));
        goto done;
    }
    while ((k = s3_stream_read(s, buf, 256 * 1024, err)) > 0) {
        if (fsys_write_all(fd, buf, (size_t)k) < 0) {
            rc = sh_err_set(err, SH_EIO, "", "cannot write %s: %s", tmp,
                            strerror(errno));
            goto done;
        }
        *bytes += (uint64_t)k;
    }
    if (k < 0) {
        rc = (int)k;
        goto done;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        fd = -1;
        rc = sh_err_set(err, SH_EIO, "", "cannot write %s: %s", path,
                        strerror(errno));
        goto done;
    }
    fd = -1;
done:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    s3_stream_free(s);
    free(buf);
    free(tmp);
    return rc;
}

/* Read object 'key' whole into *data (NUL-terminated; the caller frees
 * it). 0 or an error. */
static int
get_small(const s3_config *c, const char *bucket, const char *key, char **data,
          sh_err *err)
{
    s3_stream *s = s3_stream_open(c, bucket, key, 0, UINT64_MAX, NULL);
    strbuf     b;
    char       buf[4096];
    ssize_t    k;

    memset(&b, 0, sizeof b);
    while ((k = s3_stream_read(s, buf, sizeof buf, err)) > 0)
        sb_append(&b, buf, (size_t)k);
    s3_stream_free(s);
    if (k < 0) {
        sb_free(&b);
        *data = NULL;
        return (int)k;
    }
    *data = b.data ? b.data : xstrdup("");
    return 0;
}

/* Fetch the files of the attempt 'base' of job 'job_id' into 'dir' (which
 * exists), then the marker saying they are complete. 0 or an error. */
static int
fetch_attempt(const s3_config *c, const char *bucket, const char *dir,
              const char *job_id, const char *base, uint64_t *bytes,
              store_tick_fn tick, void *ctx, sh_err *err)
{
    char *key = list_key(job_id, base), *list = NULL, *line, *save = NULL;
    char *marker = NULL;
    int   rc, fd;

    rc = get_small(c, bucket, key, &list, err);
    if (rc == SH_ENOENT)
        sh_err_set(err, SH_ENOENT, "",
                   "the output %s of job %s is not in "
                   "the store (no %s)",
                   base, job_id, key);
    line = rc == 0 ? strtok_r(list, "\n", &save) : NULL;
    if (rc == 0 && (line == NULL || strcmp(line, STORE_LIST_HEAD) != 0))
        rc = sh_err_set(err, SH_EDATA, "", "%s is not a list of files", key);
    for (line = rc == 0 ? strtok_r(NULL, "\n", &save) : NULL;
         rc == 0 && line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *okey, *path;

        if (!is_attempt_file(line, base) || strchr(line, '/') != NULL) {
            rc = sh_err_set(err, SH_EDATA, "", "the list %s names %s", key,
                            line);
            break;
        }
        okey = shuffle_key(job_id, line);
        path = xasprintf("%s/%s", dir, line);
        rc = get_file(c, bucket, okey, path, bytes, err);
        free(path);
        free(okey);
        if (rc == 0 && tick != NULL && tick(ctx) != 0)
            rc = sh_err_set(err, SH_ECANCELED, "", "stopped");
    }
    if (rc == 0) {
        marker = xasprintf("%s/fetched-%s", dir, base);
        fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            rc = sh_err_set(err, SH_EIO, "", "cannot create %s: %s", marker,
                            strerror(errno));
        else
            close(fd);
    }
    free(marker);
    free(list);
    free(key);
    return rc;
}

int
store_fetch_outputs(const char *spool, const char *job_id,
                    const char *const *paths, size_t n, char ***local,
                    uint64_t *fetched_bytes, store_tick_fn tick, void *ctx,
                    sh_err *err)
{
    const s3_config *c = NULL;
    const char      *bucket = NULL;
    char            *dir;
    char           **v = xcalloc(n ? n : 1, sizeof *v);
    uint64_t         bytes = 0;
    size_t           i;
    int              rc = 0, on = store_get(&c, &bucket, NULL);

    dir = spool_job_dir(spool, job_id);
    if (on && fsys_mkdir_p(dir, 0755) < 0)
        rc = sh_err_set(err, SH_EIO, "", "cannot create %s: %s", dir,
                        strerror(errno));
    for (i = 0; i < n; i++) {
        const char *base = base_name(paths[i]);
        char       *marker;

        if (!on) {
            v[i] = xstrdup(paths[i]);
            continue;
        }
        v[i] = xasprintf("%s/%s", dir, base);
        /* Written by this node (same spool), or fetched before. */
        if (rc != 0 || strcmp(v[i], paths[i]) == 0)
            continue;
        marker = xasprintf("%s/fetched-%s", dir, base);
        if (access(marker, F_OK) != 0)
            rc = fetch_attempt(c, bucket, dir, job_id, base, &bytes, tick, ctx,
                               err);
        free(marker);
    }
    free(dir);
    if (fetched_bytes)
        *fetched_bytes = bytes;
    if (rc != 0) {
        store_paths_free(v, n);
        v = NULL;
    }
    *local = v;
    return rc;
}

void
store_paths_free(char **paths, size_t n)
{
    for (size_t i = 0; paths != NULL && i < n; i++)
        free(paths[i]);
    free(paths);
}

int
store_drop_job(const char *job_id, sh_err *err)
{
    const s3_config *c;
    const char      *bucket;
    char            *pre;
    s3_object       *objs = NULL;
    size_t           n = 0;
    int              rc;

    if (!store_get(&c, &bucket, NULL))
        return 0;
    pre = shuffle_key(job_id, "");
    rc = s3_list(c, bucket, pre, 1000000, &objs, &n, err);
    for (size_t i = 0; i < n; i++) {
        sh_err e;

        /* One that cannot go does not keep the others. */
        if (s3_delete(c, bucket, objs[i].key, &e) != 0 && rc == 0) {
            *err = e;
            rc = e.code;
        }
    }
    s3_objects_free(objs, n);
    free(pre);
    return rc;
}

/* ---- artifacts -------------------------------------------------------- */

char *
store_artifact_key(const char *job_id, const char *name)
{
    const char *prefix = "";

    store_get(NULL, NULL, &prefix);
    return xasprintf("%s%sartifacts/%s/%s", prefix, prefix[0] ? "/" : "",
                     job_id, name);
}

/* Non-zero when 's' is an artifact name, [a-z0-9_-]+ (artifacts.c). */
static int
artifact_name_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        char ch = s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'
              || ch == '-'))
            return 0;
    }
    return i > 0;
}

int
store_publish_artifacts(const char *spool, const char *job_id, sh_err *err)
{
    const s3_config *c;
    const char      *bucket;
    char            *dir;
    DIR             *dh;
    struct dirent   *de;
    int              rc = 0;

    if (!store_get(&c, &bucket, NULL))
        return 0;
    dir = spool_artifacts_dir(spool, job_id);
    if ((dh = opendir(dir)) == NULL) {
        if (errno != ENOENT)
            rc = sh_err_set(err, SH_EIO, "", "cannot open %s: %s", dir,
                            strerror(errno));
        free(dir);
        return rc;
    }
    while (rc == 0 && (de = readdir(dh)) != NULL) {
        struct stat st;
        char       *path, *key;

        if (!artifact_name_ok(de->d_name)
            || fstatat(dirfd(dh), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0
            || !S_ISREG(st.st_mode))
            continue;
        path = xasprintf("%s/%s", dir, de->d_name);
        key = store_artifact_key(job_id, de->d_name);
        rc = upload_files(c, bucket, key, (const char *const *)&path, 1, err);
        free(key);
        free(path);
    }
    closedir(dh);
    free(dir);
    return rc;
}

int
store_list_artifacts(const char *job_id, s3_object **objs, size_t *n,
                     sh_err *err)
{
    const s3_config *c;
    const char      *bucket;
    char            *pre;
    size_t           i, kept = 0, skip;
    int              rc;

    *objs = NULL;
    *n = 0;
    if (!store_get(&c, &bucket, NULL))
        return 0;
    pre = store_artifact_key(job_id, "");
    skip = strlen(pre);
    rc = s3_list(c, bucket, pre, 10000, objs, n, err);
    /* Keys become names; anything else under the prefix is dropped. */
    for (i = 0; rc == 0 && i < *n; i++) {
        s3_object *o = &(*objs)[i];

        if (!artifact_name_ok(o->key + skip)) {
            free(o->key);
            free(o->etag);
            continue;
        }
        memmove(o->key, o->key + skip, strlen(o->key + skip) + 1);
        (*objs)[kept++] = *o;
    }
    if (rc == 0)
        *n = kept;
    free(pre);
    return rc;
}

int
store_fetch_artifact(const char *job_id, const char *name, const char *path,
                     sh_err *err)
{
    const s3_config *c;
    const char      *bucket;
    char            *key;
    uint64_t         bytes = 0;
    int              rc;

    if (!store_get(&c, &bucket, NULL))
        return sh_err_set(err, SH_ENOENT, "", "no store");
    if (!artifact_name_ok(name))
        return sh_err_set(err, SH_ENOENT, "", "no artifact '%s'", name);
    key = store_artifact_key(job_id, name);
    rc = get_file(c, bucket, key, path, &bytes, err);
    free(key);
    return rc;
}

int
store_drop_published(const char *job_id, sh_err *err)
{
    const s3_config *c;
    const char      *bucket;
    char            *key;
    s3_object       *objs = NULL;
    size_t           n = 0;
    int              rc;
    sh_err           e;

    if (!store_get(&c, &bucket, NULL))
        return 0;
    key = store_result_key(job_id);
    rc = s3_delete(c, bucket, key, err);
    free(key);
    key = store_artifact_key(job_id, "");
    if (s3_list(c, bucket, key, 10000, &objs, &n, &e) != 0 && rc == 0) {
        *err = e;
        rc = e.code;
    }
    for (size_t i = 0; i < n; i++) {
        /* One that cannot go does not keep the others. */
        if (s3_delete(c, bucket, objs[i].key, &e) != 0 && rc == 0) {
            *err = e;
            rc = e.code;
        }
    }
    s3_objects_free(objs, n);
    free(key);
    return rc;
}

/* ---- datasets --------------------------------------------------------- */

char *
store_dataset_key(const char *file)
{
    const char *prefix = "";

    store_get(NULL, NULL, &prefix);
    return xasprintf("%s%sdatasets/%s", prefix, prefix[0] ? "/" : "", file);
}

int
store_put_dataset(const char *path, const char *file, sh_err *err)
{
    const s3_config *c;
    const char      *bucket;
    char            *key;
    int              rc;

    if (!store_get(&c, &bucket, NULL))
        return 0;
    key = store_dataset_key(file);
    rc = upload_files(c, bucket, key, &path, 1, err);
    free(key);
    return rc;
}

char *
store_dataset_url(const char *file, uint64_t size)
{
    const s3_config *c;
    const char      *bucket;
    char            *key, *url = NULL;
    uint64_t         got = 0;
    sh_err           err;
    size_t           n = strlen(file);

    if (!store_get(&c, &bucket, NULL)
        || (n >= 3 && !strcmp(file + n - 3, ".gz")))
        return NULL;
    key = store_dataset_key(file);
    if (s3_head(c, bucket, key, &got, NULL, &err) == 0 && got == size)
        url = xasprintf("s3://%s/%s", bucket, key);
    free(key);
    return url;
}

int
store_drop_dataset(const char *file, sh_err *err)
{
    const s3_config *c;
    const char      *bucket;
    char            *key;
    int              rc;

    if (!store_get(&c, &bucket, NULL))
        return 0;
    key = store_dataset_key(file);
    rc = s3_delete(c, bucket, key, err);
    free(key);
    return rc;
}
