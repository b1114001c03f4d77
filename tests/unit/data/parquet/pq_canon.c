/*
 * pq_canon.c - print a Parquet file's rows as sheaf reads them, in the
 * canonical CSV of check_duckdb.js (see there), or (-w OUT CODEC) first
 * write the unit tests' kind of table to OUT with sheaf's writer.
 *
 * A tool for checking sheaf against DuckDB by hand or from the
 * integration suite; not part of the unit tests. Build from the repo root
 * after `make all`:
 *   cc -std=c11 -D_GNU_SOURCE -o build/pq_canon \
 *      tests/unit/data/parquet/pq_canon.c build/executor/[a-z]*.o
 * build/lib/[a-z]*.o \
 *      $(pkg-config --libs zlib libzstd jansson) -lsnappy -lm
 * then
 *   build/pq_canon F.parquet > a; node tests/unit/data/parquet/check_duckdb.js
 * F.parquet > b; diff a b
 */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../../executor/parquet.h"
#include "../../../../executor/parquet_write.h"

static void
canon(const sh_value *v)
{
    uint64_t bits;
    size_t   i;

    switch (v->type) {
    case SH_NULL:
        break;
    case SH_INT:
        printf("%" PRId64, v->u.i);
        break;
    case SH_FLOAT:
        if (isnan(v->u.f)) {
            printf("nan");
            break;
        }
        memcpy(&bits, &v->u.f, 8);
        printf("f%016" PRIx64, bits);
        break;
    case SH_BOOL:
        printf(v->u.b ? "true" : "false");
        break;
    case SH_STRING:
        putchar('x');
        for (i = 0; i < v->u.s.len; i++)
            printf("%02X", (unsigned char)v->u.s.ptr[i]);
        break;
    }
}

/* The table of the writer check: every type, nulls, edge values, a
 * dictionary column and a plain one, 5000 rows. */
static int
write_table(const char *out, const char *codec_name, size_t rg_rows)
{
    static const char  *words[] = {"alpha", "beta", "", "gamma, \"q\"",
                                   "\xc3\xbc\xe2\x82\xac"};
    static const double specials[] = {0.0, -0.0,   INFINITY, -INFINITY,
                                      NAN, 1e-300, -1.5e300};
    schema             *sc = schema_new();
    pq_writer          *w;
    sh_value            row[6];
    char                buf[128];
    sh_err              err;
    int                 codec, fd, rc = 0;
    size_t              i;

    if (pq_codec_parse(codec_name, &codec) < 0) {
        fprintf(stderr, "unknown codec %s\n", codec_name);
        return 2;
    }
    schema_add(sc, "i", SH_INT);
    schema_add(sc, "f", SH_FLOAT);
    schema_add(sc, "b", SH_BOOL);
    schema_add(sc, "s_dict", SH_STRING);
    schema_add(sc, "s_plain", SH_STRING);
    schema_add(sc, "small", SH_INT);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(out);
        return 1;
    }
    w = pq_writer_new(fd, sc, codec, rg_rows);
    for (i = 0; i < 5000 && rc == 0; i++) {
        row[0] = i % 7 == 3 ? sh_null()
                 : i == 1   ? sh_int(INT64_MIN)
                 : i == 2   ? sh_int(INT64_MAX)
                            : sh_int((int64_t)i * 1000003 - 77777);
        row[1] = i % 5 == 1 ? sh_null()
                 : i < 7    ? sh_float(specials[i])
                            : sh_float((double)i / 3.0 - 100);
        row[2] = i % 3 == 0 ? sh_null() : sh_bool(i % 4 < 2);
        row[3] = i % 6 == 5 ? sh_null()
                            : sh_str(words[i % 5], strlen(words[i % 5]));
        row[4] = i % 8 == 1
                     ? sh_null()
                     : sh_str(buf,
                              (size_t)snprintf(buf, sizeof(buf), "row %zu %.*s",
                                               i, (int)(i % 23),
                                               "zzzzzzzzzzzzzzzzzzzzzzz"));
        row[5] = i >= 4000 ? sh_null() : sh_int((int64_t)(i % 3));
        rc = pq_writer_row(w, row, &err);
    }
    if (rc == 0)
        rc = pq_writer_finish(w, &err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    pq_writer_free(w);
    close(fd);
    schema_free(sc);
    return rc < 0;
}

int
main(int argc, char **argv)
{
    pq_file        *f;
    pq_reader      *r;
    const sh_value *row;
    size_t          i, n, *rgs;
    sh_err          err;
    int             fd, rc;

    if (argc == 5 && strcmp(argv[1], "-w") == 0)
        return write_table(argv[2], argv[3], (size_t)atol(argv[4]));
    if (argc != 2) {
        fprintf(stderr, "usage: pq_canon FILE | pq_canon -w OUT CODEC "
                        "ROW_GROUP_ROWS\n");
        return 2;
    }
    fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    if ((f = pq_open(fd, argv[1], &err)) == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    n = pq_num_row_groups(f);
    rgs = malloc((n + 1) * sizeof(*rgs));
    for (i = 0; i < n; i++)
        rgs[i] = i;
    if ((r = pq_reader_new(f, rgs, n, NULL, &err)) == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (i = 0; i < pq_num_cols(f); i++)
        printf("%s%s", i ? "," : "", pq_col_at(f, i)->name);
    putchar('\n');
    while ((rc = pq_reader_next(r, &row, &err)) == 1) {
        for (i = 0; i < pq_num_cols(f); i++) {
            if (i)
                putchar(',');
            canon(&row[i]);
        }
        putchar('\n');
    }
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    pq_reader_free(r);
    pq_close(f);
    free(rgs);
    close(fd);
    return rc < 0;
}
