/*
 * result.c - the result command: a job's output downloaded, streamed, to
 * stdout or to a file. A file is written as FILE.part (its ETag kept in
 * FILE.part.etag), resumed with Range when a download broke, even by a
 * later run; checked against the job's manifest (each part's length and
 * SHA-256; else the job's result bytes) and renamed to FILE only then.
 */
#include "cli.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define RESULT_BUF 65536

int
cli_sha256(FILE *f, uint64_t len, unsigned char md[32], char hex[65])
{
    EVP_MD_CTX    *ctx = EVP_MD_CTX_new();
    unsigned char *buf = xmalloc(RESULT_BUF);
    unsigned int   md_len = 0, i;
    size_t         n;
    int            rc = -1;

    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto done;
    while (len > 0) {
        n = fread(buf, 1, len < RESULT_BUF ? (size_t)len : RESULT_BUF, f);
        if (n == 0)
            goto done;
        EVP_DigestUpdate(ctx, buf, n);
        len -= n;
    }
    if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 32)
        goto done;
    for (i = 0; hex != NULL && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    rc = 0;

done:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

/* GET 'path' into 'rep'. Returns the HTTP status (0: no reply). */
static long
result_get(cli *c, const char *path, http_reply *rep)
{
    http_req rq = {.method = "GET", .path = path, .retry = 1};
    char     msg[HTTP_ERR_MAX];

    if (http_request(c->http, &rq, rep, msg) != HTTP_OK)
        return 0;
    return rep->status;
}

/* Check the file at 'path' against 'manifest' (parts in order). */
static int
result_check_parts(const json_t *manifest, const char *path, uint64_t size)
{
    const json_t *parts = json_object_get(manifest, "parts"), *p;
    FILE         *f = fopen(path, "rb");
    uint64_t      sum = 0, len;
    char          hex[65];
    unsigned char md[32];
    const char   *want;
    size_t        i;
    int           rc = 0;

    if (f == NULL) {
        fprintf(stderr, "sheaf: cannot read %s: %s\n", path, strerror(errno));
        return CLI_EXIT_LOCAL;
    }
    for (i = 0; i < json_array_size(parts); i++)
        sum += (uint64_t)cli_json_int(json_array_get(parts, i), "bytes");
    if (json_is_integer(json_object_get(manifest, "bytes"))
        && (uint64_t)cli_json_int(manifest, "bytes") != sum
        && json_array_size(parts) > 0) {
        fprintf(stderr,
                "sheaf: the manifest's parts add up to %llu bytes, "
                "not its %lld\n",
                (unsigned long long)sum,
                (long long)cli_json_int(manifest, "bytes"));
        rc = CLI_EXIT_UNREACHABLE;
        goto done;
    }
    if (json_array_size(parts) == 0)
        sum = (uint64_t)cli_json_int(manifest, "bytes");
    if (sum != size) {
        fprintf(stderr,
                "sheaf: the download has %llu bytes, the manifest "
                "says %llu\n",
                (unsigned long long)size, (unsigned long long)sum);
        rc = CLI_EXIT_LOCAL;
        goto done;
    }
    for (i = 0; i < json_array_size(parts); i++) {
        p = json_array_get(parts, i);
        len = (uint64_t)cli_json_int(p, "bytes");
        want = cli_json_str(p, "sha256", NULL);
        if (cli_sha256(f, len, md, hex) != 0) {
            fprintf(stderr, "sheaf: cannot read %s\n", path);
            rc = CLI_EXIT_LOCAL;
            goto done;
        }
        if (want != NULL && strcasecmp(want, hex) != 0) {
            fprintf(stderr,
                    "sheaf: part %zu of the download has SHA-256 %s, "
                    "the manifest says %.64s\n",
                    i, hex, want);
            rc = CLI_EXIT_LOCAL;
            goto done;
        }
    }
    if (cli_json_str(manifest, "sha256", NULL) != NULL) {
        rewind(f);
        if (cli_sha256(f, size, md, hex) != 0
            || strcasecmp(cli_json_str(manifest, "sha256", ""), hex) != 0) {
            fprintf(stderr,
                    "sheaf: the download's SHA-256 is %s, the "
                    "manifest says %.64s\n",
                    hex, cli_json_str(manifest, "sha256", ""));
            rc = CLI_EXIT_LOCAL;
        }
    }

done:
    fclose(f);
    return rc;
}

/*
 * Check the file 'path' (the result of job 'eid', escaped) against the
 * job's manifest: each part's length and SHA-256, in order. Without a
 * manifest (501, 404), against the job's result bytes. Returns 0, or
 * CLI_EXIT_LOCAL after printing the mismatch, or another exit code when
 * a request failed.
 */
static int
cli_verify_result(cli *c, const char *eid, const char *path)
{
    http_reply  rep = {0};
    char       *url = xasprintf("/v1/jobs/%s/manifest", eid);
    struct stat st;
    long        status;
    int         rc = 0;
    int64_t     want;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "sheaf: cannot read %s: %s\n", path, strerror(errno));
        rc = CLI_EXIT_LOCAL;
        goto done;
    }
    status = result_get(c, url, &rep);
    if (status == 200 && json_is_object(rep.json)) {
        rc = result_check_parts(rep.json, path, (uint64_t)st.st_size);
        goto done;
    }
    if (status != 501 && status != 404 && status != 405) {
        if (status == 0)
            fprintf(stderr, "sheaf: could not fetch the manifest\n");
        rc = status == 0 ? CLI_EXIT_UNREACHABLE : cli_fail_reply(&rep);
        goto done;
    }
    /* No manifest yet: the length the job announced. */
    http_reply_free(&rep);
    free(url);
    url = xasprintf("/v1/jobs/%s", eid);
    if (result_get(c, url, &rep) != 200)
        goto done; /* nothing to check against */
    want = cli_json_int(json_object_get(rep.json, "result"), "bytes");
    if (json_is_integer(
            json_object_get(json_object_get(rep.json, "result"), "bytes"))
        && want != (int64_t)st.st_size) {
        fprintf(stderr,
                "sheaf: the download has %lld bytes, the job's "
                "result %lld\n",
                (long long)st.st_size, (long long)want);
        rc = CLI_EXIT_LOCAL;
    }

done:
    http_reply_free(&rep);
    free(url);
    return rc;
}

/* Read the ETag saved next to a .part into 'etag'; "" when none. */
static void
result_read_etag(const char *path, char etag[128])
{
    FILE  *f = fopen(path, "r");
    size_t n = 0;

    etag[0] = '\0';
    if (f == NULL)
        return;
    if (fgets(etag, 128, f) != NULL)
        n = strcspn(etag, "\r\n");
    etag[n] = '\0';
    fclose(f);
}

/* Save 'etag' next to a .part, so that a later run resumes it. */
static void
result_write_etag(const char *path, const char *etag)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return;
    fprintf(f, "%s\n", etag);
    fclose(f);
}

/*
 * Open 'part' to download into: resumed at its end (its length in *start)
 * when a broken download left it with the ETag of its bytes in 'tag' (read
 * into 'etag'), else empty. Returns the open file, or NULL after saying
 * why on stderr.
 */
static FILE *
result_open_part(const cli *c, const char *part, const char *tag,
                 char etag[128], uint64_t *start)
{
    FILE       *fp = NULL;
    struct stat st;

    /* A .part a broken download left, with the ETag of its bytes. */
    result_read_etag(tag, etag);
    if (etag[0] != '\0' && stat(part, &st) == 0 && S_ISREG(st.st_mode)
        && st.st_size > 0 && (fp = fopen(part, "r+b")) != NULL
        && fseeko(fp, 0, SEEK_END) == 0) {
        *start = (uint64_t)st.st_size;
    } else {
        if (fp != NULL)
            fclose(fp);
        fp = fopen(part, "wb");
    }
    if (fp == NULL) {
        fprintf(stderr, "sheaf: cannot write %s: %s\n", part, strerror(errno));
        return NULL;
    }
    if (*start > 0 && c->err_tty)
        fprintf(stderr, "sheaf: resuming %s after %llu bytes\n", part,
                (unsigned long long)*start);
    return fp;
}

/*
 * Download the result at 'path' into 'fp' from byte 'start' (checked
 * against 'etag' when resuming; from the start again if the server says
 * the range is past the end). 'part' and 'tag' are the file and its ETag
 * file, NULL for stdout. On a broken transfer *keep says that the bytes
 * were kept for the next run. Returns 0 for a 200, else a CLI_EXIT_* code
 * (said on stderr); the reply is in 'rep' (freed by the caller).
 */
static int
result_download(cli *c, const char *path, FILE *fp, const char *part,
                const char *tag, uint64_t start, const char *etag,
                http_reply *rep, int *keep)
{
    char msg[HTTP_ERR_MAX];
    int  rc;

    rc = http_download_at(c->http, path, fp, start, start ? etag : NULL, rep,
                          msg);
    if (rc == HTTP_OK && rep->status == 416 && start > 0) {
        /* The .part is as long as the result or longer: start over. */
        http_reply_free(rep);
        if (ftruncate(fileno(fp), 0) != 0 || fseeko(fp, 0, SEEK_SET) != 0) {
            fprintf(stderr, "sheaf: writing %s: %s\n", part, strerror(errno));
            return CLI_EXIT_LOCAL;
        }
        rc = http_download(c->http, path, fp, rep, msg);
    }
    if (rc != HTTP_OK) {
        /* Keep what came for the next run, with the ETag it came with. */
        *keep = rc == HTTP_ENET && part != NULL && rep->etag[0] != '\0';
        if (*keep) {
            result_write_etag(tag, rep->etag);
            fprintf(stderr,
                    "sheaf: kept what arrived in %s; the same "
                    "command resumes it\n",
                    part);
        }
        return cli_fail_transport(rc, msg);
    }
    if (rep->status >= 200 && rep->status < 300 && rep->status != 200) {
        fprintf(stderr, "sheaf: the result came back as HTTP %ld, not 200\n",
                rep->status);
        return CLI_EXIT_UNREACHABLE;
    }
    if (rep->status != 200)
        return cli_fail_reply(rep);
    return 0;
}

/*
 * Make the downloaded 'part' durable, close it (*fp becomes NULL), check
 * it against job 'eid''s result and rename it to 'out'. Returns 0, or a
 * CLI_EXIT_* code (said on stderr).
 */
static int
result_finish_file(cli *c, const char *eid, FILE **fp, const char *part,
                   const char *out)
{
    long size_bytes = ftell(*fp);
    int  rc;

    if (fflush(*fp) != 0 || fsync(fileno(*fp)) != 0) {
        fprintf(stderr, "sheaf: writing %s: %s\n", part, strerror(errno));
        return CLI_EXIT_LOCAL;
    }
    if (fclose(*fp) != 0) {
        *fp = NULL;
        fprintf(stderr, "sheaf: writing %s: %s\n", part, strerror(errno));
        return CLI_EXIT_LOCAL;
    }
    *fp = NULL;
    if ((rc = cli_verify_result(c, eid, part)) != 0) {
        if (rc == CLI_EXIT_LOCAL)
            fprintf(stderr,
                    "sheaf: %s does not match the job's result; "
                    "removed\n",
                    part);
        return rc;
    }
    if (rename(part, out) != 0) {
        fprintf(stderr, "sheaf: renaming %s to %s: %s\n", part, out,
                strerror(errno));
        return CLI_EXIT_LOCAL;
    }
    if (c->err_tty)
        fprintf(stderr, "sheaf: wrote %ld bytes to %s\n", size_bytes, out);
    return 0;
}

int
cli_fetch_result(cli *c, const char *id, const char *out)
{
    char      *eid = cli_job_path_id(id), *path = NULL, *part = NULL;
    char      *tag = NULL, etag[128] = "";
    FILE      *fp = NULL;
    http_reply rep = {0};
    int        rc, keep = 0, to_stdout = out == NULL || strcmp(out, "-") == 0;
    uint64_t   start = 0;

    if (eid == NULL)
        return CLI_EXIT_USAGE;
    path = xasprintf("/v1/jobs/%s/result", eid);
    if (to_stdout) {
        fp = stdout;
    } else {
        part = xasprintf("%s.part", out);
        tag = xasprintf("%s.part.etag", out);
        fp = result_open_part(c, part, tag, etag, &start);
        if (fp == NULL) {
            rc = CLI_EXIT_LOCAL;
            goto done;
        }
    }
    rc = result_download(c, path, fp, part, tag, start, etag, &rep, &keep);
    if (rc != 0)
        goto done;
    if (to_stdout) {
        if (fflush(stdout) != 0) {
            fprintf(stderr, "sheaf: writing the result to stdout: %s\n",
                    strerror(errno));
            rc = CLI_EXIT_LOCAL;
        }
        goto done;
    }
    rc = result_finish_file(c, eid, &fp, part, out);

done:
    if (fp != NULL && !to_stdout)
        fclose(fp);
    if (rc != 0 && part != NULL && !keep)
        unlink(part);
    if (tag != NULL && !keep)
        unlink(tag);
    http_reply_free(&rep);
    free(tag);
    free(part);
    free(path);
    free(eid);
    return rc;
}

int
cli_cmd_result(cli *c)
{
    return cli_fetch_result(c, c->args.pos[0], c->args.val[OPT_OUTPUT]);
}
