/*
 * s3_tool.c - a command-line driver of lib/s3 for the integration tests
 * (tests/integration/test_s3.py), configured from the environment like
 * sheafd (s3.h):
 *
 *   s3_tool head BUCKET KEY                 "SIZE ETAG"
 *   s3_tool get BUCKET KEY [START END]      the bytes to stdout; the
 *                                           requests sent to stderr
 *   s3_tool list BUCKET PREFIX              "KEY\tSIZE\tETAG" lines
 *   s3_tool put BUCKET KEY FILE
 *   s3_tool mpu BUCKET KEY FILE PART_BYTES [abort]   prints the upload id
 *   s3_tool delete BUCKET KEY
 *   s3_tool presign BUCKET KEY SECONDS [EPOCH]   (EPOCH: the signing time)
 *
 * Exits 0, or 1 with the error on stderr ("ENOENT: ..." for a missing
 * object), 2 for bad usage.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/s3.h"
#include "../../lib/fsys.h"
#include "../../lib/util.h"

static int
fail(const sh_err *e)
{
    fprintf(stderr, "%s: %s\n", e->code == SH_ENOENT ? "ENOENT" : "ERROR",
            e->msg);
    return 1;
}

static int
cmd_get(const s3_config *c, int argc, char **argv, sh_err *e)
{
    uint64_t   start = 0, end = UINT64_MAX;
    s3_stream *s;
    char       buf[65536];
    ssize_t    n;

    if (argc == 6) {
        start = strtoull(argv[4], NULL, 10);
        end = strtoull(argv[5], NULL, 10);
    }
    s = s3_stream_open(c, argv[2], argv[3], start, end, NULL);
    while ((n = s3_stream_read(s, buf, sizeof buf, e)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    fprintf(stderr, "requests %u\n", s3_stream_requests(s));
    s3_stream_free(s);
    return n < 0 ? fail(e) : 0;
}

static int
cmd_mpu(const s3_config *c, int argc, char **argv, sh_err *e)
{
    size_t     len, part = strtoul(argv[5], NULL, 10), off;
    char      *data = fsys_read_file(argv[4], &len);
    s3_upload *u;
    int        rc = 0;

    if (data == NULL || part == 0) {
        fprintf(stderr, "cannot read %s\n", argv[4]);
        free(data);
        return 2;
    }
    if ((u = s3_upload_begin(c, argv[2], argv[3], e)) == NULL) {
        free(data);
        return fail(e);
    }
    printf("%s\n", s3_upload_id(u));
    for (off = 0; rc == 0 && (off < len || off == 0); off += part) {
        size_t n = len - off < part ? len - off : part;

        rc = s3_upload_part(u, data + off, n, e);
        if (len == 0)
            break;
    }
    if (rc == 0)
        rc = argc == 7 && strcmp(argv[6], "abort") == 0
                 ? s3_upload_abort(u, e)
                 : s3_upload_complete(u, e);
    s3_upload_free(u);
    free(data);
    return rc ? fail(e) : 0;
}

int
main(int argc, char **argv)
{
    s3_config c;
    sh_err    e;
    int       rc = 2;

    if (argc < 3) {
        fprintf(stderr, "usage: s3_tool head|get|list|put|mpu|delete|"
                        "presign BUCKET ...\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (s3_config_from_env(&c, &e) != 0)
        return fail(&e);
    if (strcmp(argv[1], "head") == 0 && argc == 4) {
        uint64_t size;
        char    *etag;

        rc = s3_head(&c, argv[2], argv[3], &size, &etag, &e);
        if (rc == 0) {
            printf("%llu %s\n", (unsigned long long)size, etag);
            free(etag);
        }
        rc = rc ? fail(&e) : 0;
    } else if (strcmp(argv[1], "get") == 0 && (argc == 4 || argc == 6)) {
        rc = cmd_get(&c, argc, argv, &e);
    } else if (strcmp(argv[1], "list") == 0 && argc == 4) {
        s3_object *objs;
        size_t     n, i;

        rc = s3_list(&c, argv[2], argv[3], 100000, &objs, &n, &e);
        for (i = 0; rc == 0 && i < n; i++) {
            printf("%s\t%llu\t%s\n", objs[i].key,
                   (unsigned long long)objs[i].size_bytes, objs[i].etag);
        }
        if (rc == 0)
            s3_objects_free(objs, n);
        rc = rc ? fail(&e) : 0;
    } else if (strcmp(argv[1], "put") == 0 && argc == 5) {
        size_t len;
        char  *data = fsys_read_file(argv[4], &len);

        if (data == NULL) {
            fprintf(stderr, "cannot read %s\n", argv[4]);
        } else {
            rc = s3_put(&c, argv[2], argv[3], data, len, &e) ? fail(&e) : 0;
            free(data);
        }
    } else if (strcmp(argv[1], "mpu") == 0 && (argc == 6 || argc == 7)) {
        rc = cmd_mpu(&c, argc, argv, &e);
    } else if (strcmp(argv[1], "delete") == 0 && argc == 4) {
        rc = s3_delete(&c, argv[2], argv[3], &e) ? fail(&e) : 0;
    } else if (strcmp(argv[1], "presign") == 0 && (argc == 5 || argc == 6)) {
        time_t when = argc == 6 ? (time_t)atoll(argv[5]) : time(NULL);
        char  *url = s3_presign_get(&c, argv[2], argv[3], atol(argv[4]), when);

        printf("%s\n", url);
        free(url);
        rc = 0;
    } else {
        fprintf(stderr, "s3_tool: bad arguments\n");
    }
    s3_config_free(&c);
    curl_global_cleanup();
    return rc;
}
