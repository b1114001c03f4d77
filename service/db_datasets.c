/*
 * db_datasets.c - the statements of uploaded datasets (insert, show by id
 * or name, list, delete unless a queued or running job reads one), the
 * datasets a job reads, and the cached SHA-256 of result parts for the
 * manifest.
 */
#include "db_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"

#define DS_SELECT                                                            \
    "SELECT d.id, d.name, d.file, d.bytes, d.sha256, d.compression, " DB_TS( \
        "d.created_at") ", d.seq FROM datasets d "

/* Fill 'ds' from row 'r' of a DS_SELECT result. */
static void
ds_from_row(PGresult *res, int r, db_dataset *ds)
{
    snprintf(ds->id, sizeof ds->id, "%s", PQgetvalue(res, r, 0));
    ds->name = xstrdup(PQgetvalue(res, r, 1));
    ds->file = xstrdup(PQgetvalue(res, r, 2));
    ds->bytes = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    snprintf(ds->sha256, sizeof ds->sha256, "%s", PQgetvalue(res, r, 4));
    snprintf(ds->compression, sizeof ds->compression, "%s",
             PQgetvalue(res, r, 5));
    snprintf(ds->created_at, sizeof ds->created_at, "%s",
             PQgetvalue(res, r, 6));
    ds->seq = strtoll(PQgetvalue(res, r, 7), NULL, 10);
}

void
db_dataset_clear(db_dataset *ds)
{
    free(ds->name);
    free(ds->file);
    memset(ds, 0, sizeof *ds);
}

void
db_datasets_free(db_dataset *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        db_dataset_clear(&v[i]);
    free(v);
}

int
db_dataset_insert(db *d, const char *tenant, db_dataset *ds, sh_err *err)
{
    char        bytes[32];
    const char *p[7];
    PGresult   *res;

    snprintf(bytes, sizeof bytes, "%lld", (long long)ds->bytes);
    p[0] = ds->id;
    p[1] = tenant;
    p[2] = ds->name;
    p[3] = ds->file;
    p[4] = bytes;
    p[5] = ds->sha256;
    p[6] = ds->compression;
    res = db_exec(d, "insert dataset",
                  "INSERT INTO datasets (id, tenant, name, file, bytes,"
                  " sha256, compression) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                  " RETURNING " DB_TS("created_at") ", seq",
                  7, p, err);
    if (res == NULL)
        return SH_EDB;
    snprintf(ds->created_at, sizeof ds->created_at, "%s",
             PQgetvalue(res, 0, 0));
    ds->seq = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return 0;
}

int
db_dataset_get(db *d, const char *tenant, const char *ref, db_dataset *ds,
               sh_err *err)
{
    const char *p[2] = {ref, tenant};
    PGresult   *res;
    int         rc = 0;

    if (util_is_uuid(ref, strlen(ref)))
        res = db_exec(d, "get dataset",
                      DS_SELECT "WHERE d.id = $1 AND d.tenant = $2", 2, p, err);
    else
        res = db_exec(d, "get dataset by name",
                      DS_SELECT "WHERE d.name = $1 AND d.tenant = $2"
                                " ORDER BY d.seq DESC LIMIT 1",
                      2, p, err);
    if (res == NULL)
        return SH_EDB;
    if (PQntuples(res) == 0)
        rc = sh_err_set(err, SH_ENOENT, NULL, "no dataset %s", ref);
    else
        ds_from_row(res, 0, ds);
    PQclear(res);
    return rc;
}

int
db_dataset_list(db *d, const char *tenant, const char *name, int limit,
                const char *cursor, db_dataset **out, size_t *n, int *more,
                sh_err *err)
{
    char        lim[16];
    const char *p[4];
    PGresult   *res;
    int         rows;

    *out = NULL;
    *n = 0;
    *more = 0;
    if (cursor && *cursor
        && (strspn(cursor, "0123456789") != strlen(cursor)
            || strlen(cursor) > 18))
        return sh_err_set(err, SH_EINVAL, "cursor",
                          "cursor '%s' is not one "
                          "this service gave out",
                          cursor);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    p[0] = tenant;
    p[1] = name;
    p[2] = cursor && *cursor ? cursor : NULL;
    p[3] = lim;
    res = db_exec(d, "list datasets",
                  DS_SELECT "WHERE d.tenant = $1"
                            " AND ($2::text IS NULL OR d.name = $2)"
                            " AND ($3::bigint IS NULL OR d.seq < $3::bigint)"
                            " ORDER BY d.seq DESC LIMIT $4::int",
                  4, p, err);
    if (res == NULL)
        return SH_EDB;
    rows = PQntuples(res);
    *more = rows > limit;
    *n = (size_t)(rows < limit ? rows : limit);
    *out = xcalloc(*n ? *n : 1, sizeof **out);
    for (size_t r = 0; r < *n; r++)
        ds_from_row(res, (int)r, &(*out)[r]);
    PQclear(res);
    return 0;
}

int
db_dataset_delete(db *d, const char *tenant, const char *id, char **file,
                  sh_err *err)
{
    const char *p[2] = {id, tenant};
    PGresult   *res = NULL;
    int         rc;

    *file = NULL;
    if (!util_is_uuid(id, strlen(id)))
        return sh_err_set(err, SH_ENOENT, NULL, "no dataset %s", id);
    if ((rc = db_begin(d, err)) < 0)
        return rc;
    /* The row lock first: a submit recording that a job reads this
     * dataset holds it shared (db_job_set_datasets), so the look at the
     * jobs below, a statement of its own, sees that job. */
    res = db_exec(d, "lock dataset",
                  "SELECT file FROM datasets"
                  " WHERE id = $1 AND tenant = $2 FOR UPDATE",
                  2, p, err);
    if (res == NULL) {
        rc = SH_EDB;
        goto fail;
    }
    if (PQntuples(res) == 0) {
        rc = sh_err_set(err, SH_ENOENT, NULL, "no dataset %s", id);
        goto fail;
    }
    *file = xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = db_exec(d, "jobs reading dataset",
                  "SELECT id FROM jobs"
                  " WHERE status IN ('queued', 'running')"
                  " AND dataset_ids @> ARRAY[$1::uuid] LIMIT 1",
                  1, p, err);
    if (res == NULL) {
        rc = SH_EDB;
        goto fail;
    }
    if (PQntuples(res) > 0) {
        rc = sh_err_set(err, SH_ESTATE, NULL,
                        "dataset %s is read by job %s, which is queued or "
                        "running; cancel it or wait for it to end",
                        id, PQgetvalue(res, 0, 0));
        goto fail;
    }
    PQclear(res);
    res = NULL;
    if ((rc = db_run(d, "delete dataset",
                     "DELETE FROM datasets"
                     " WHERE id = $1",
                     1, p, err))
        < 0)
        goto fail;
    if ((rc = db_commit(d, err)) < 0)
        goto fail;
    return 0;

fail:
    PQclear(res);
    db_rollback(d);
    free(*file);
    *file = NULL;
    return rc;
}

int
db_job_set_datasets(db *d, const char *job_id, char (*ids)[37], size_t n,
                    sh_err *err)
{
    strbuf      arr = {0};
    const char *p[2];
    PGresult   *res;
    int         found;

    sb_putc(&arr, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sb_putc(&arr, ',');
        sb_puts(&arr, ids[i]);
    }
    sb_putc(&arr, '}');
    p[0] = job_id;
    p[1] = arr.data;
    /* FOR SHARE: a delete of one of them waits for this, then sees the
     * job (db_dataset_delete). */
    res = db_exec(d, "record datasets of job",
                  "WITH ds AS (SELECT id FROM datasets"
                  " WHERE id = ANY($2::uuid[]) FOR SHARE),"
                  " u AS (UPDATE jobs SET dataset_ids = $2::uuid[]"
                  " WHERE id = $1 RETURNING 1)"
                  " SELECT (SELECT count(*) FROM ds), (SELECT count(*) FROM u)",
                  2, p, err);
    sb_free(&arr);
    if (res == NULL)
        return SH_EDB;
    found = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return found;
}

int
db_parts_sha256(db *d, const char *job_id, const db_part *parts, size_t n,
                char (*shas)[65], sh_err *err)
{
    const char *p[1] = {job_id};
    PGresult   *res;

    for (size_t i = 0; i < n; i++)
        shas[i][0] = '\0';
    res = db_exec(d, "get part hashes",
                  "SELECT output, sha256 FROM tasks WHERE job_id = $1"
                  " AND state = 'done' AND sha256 IS NOT NULL",
                  1, p, err);
    if (res == NULL)
        return SH_EDB;
    for (int r = 0; r < PQntuples(res); r++) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(parts[i].path, PQgetvalue(res, r, 0)) == 0) {
                snprintf(shas[i], 65, "%s", PQgetvalue(res, r, 1));
                break;
            }
        }
    }
    PQclear(res);
    return 0;
}

int
db_part_set_sha256(db *d, const char *job_id, const char *path, const char *sha,
                   sh_err *err)
{
    const char *p[3] = {job_id, path, sha};

    return db_run(d, "cache part hash",
                  "UPDATE tasks SET sha256 = $3 WHERE job_id = $1"
                  " AND output = $2 AND state = 'done'",
                  3, p, err);
}
