/*
 * test_csv.c - unit tests of executor/csv: the parser's edge cases against
 * hand-written records, the reader against a slow byte-at-a-time reference
 * parser (also with tiny read blocks, so the buffer ends at every position
 * of a record), and the splitter's promise that reading every range it makes
 * gives exactly the records and line numbers of one reader over the file.
 *
 * Records are compared in a text form, one record a line:
 *   L<line> [unquoted field]{quoted field}...
 * with bytes outside printable ASCII, '\', '[', ']', '{' and '}' written as
 * \n, \r, \\ or \xHH, so a failure prints both forms and the first line
 * where they differ.
 */
#include <CUnit/CUnit.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../executor/csv.h"
#include "../../lib/util.h"
#include "test_helpers.h"
#include "test_suites.h"

/* The test hook of csv.c: the block size of the readers made after it. */
void csv_set_block_bytes_for_test(size_t block_bytes);

static const csv_dialect comma = {',', '"', 0, 0};

/* Compare two renderings; on failure show the first line that differs. */
#define CHECK_TEXT(what, exp, act) \
    check_text(__FILE__, __LINE__, (what), (exp), (act))

static void
check_text(const char *file, int line, const char *what, const char *exp,
           const char *act)
{
    size_t i = 0, ln = 1, bol = 0;

    if (strcmp(exp, act) == 0) {
        CU_assertImplementation(CU_TRUE, (unsigned)line, what, file, "",
                                CU_FALSE);
        return;
    }
    while (exp[i] != '\0' && exp[i] == act[i]) {
        if (exp[i] == '\n') {
            ln++;
            bol = i + 1;
        }
        i++;
    }
    th_check(false, file, line, __func__,
             "%s: renderings differ at line %zu\n"
             "  expected: %.*s\n  actual:   %.*s\n"
             "full expected:\n%s\nfull actual:\n%s",
             what, ln, (int)strcspn(exp + bol, "\n"), exp + bol,
             (int)strcspn(act + bol, "\n"), act + bol,
             strlen(exp) < 4000 ? exp : "(long)",
             strlen(act) < 4000 ? act : "(long)");
}

/* Append the escaped bytes of a field to 'sb'. */
static void
render_bytes(strbuf *sb, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char             *w;

    sb_reserve(sb, 4 * n);
    w = sb->data + sb->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c == '\n' || c == '\r' || c == '\\') {
            *w++ = '\\';
            *w++ = c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
        } else if (c < 0x20 || c >= 0x7f || c == '[' || c == ']' || c == '{'
                   || c == '}') {
            *w++ = '\\';
            *w++ = 'x';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        } else {
            *w++ = (char)c;
        }
    }
    sb->len = (size_t)(w - sb->data);
    sb->data[sb->len] = '\0';
}

/* Append one record in the text form. */
static void
render_record(strbuf *sb, uint64_t line, const csv_field *f, size_t n)
{
    sb_printf(sb, "L%llu ", (unsigned long long)line);
    for (size_t i = 0; i < n; i++) {
        if (f[i].quoted != 0 && f[i].quoted != 1)
            sb_printf(sb, "(quoted=%d)", f[i].quoted);
        sb_putc(sb, f[i].quoted ? '{' : '[');
        render_bytes(sb, f[i].ptr, f[i].len);
        sb_putc(sb, f[i].quoted ? '}' : ']');
    }
    sb_putc(sb, '\n');
}

/*
 * Read the records starting in ['start', 'end') of 'fd' and append them to
 * 'out'; an error is appended as "ERROR <name>: <message>\n". Returns the
 * reader's last return value (0 or an error code).
 */
static int
render_range(int fd, uint64_t start, uint64_t end, uint64_t line,
             const csv_dialect *d, strbuf *out)
{
    csv_reader      *r = csv_reader_new(fd, start, end, line, d);
    const csv_field *f;
    size_t           n;
    sh_err           err;
    int              rc;

    sh_err_clear(&err);
    while ((rc = csv_reader_next(r, &f, &n, &err)) == 1)
        render_record(out, csv_reader_line(r), f, n);
    if (rc != 0)
        sb_printf(out, "ERROR %s: %s\n", sh_err_name(rc), err.msg);
    csv_reader_free(r);
    return rc;
}

/* Render all of 'data' read as one file with one reader. */
static char *
render_data(const char *data, size_t n, const csv_dialect *d)
{
    strbuf sb = {0};
    int    fd = th_temp_file(data, n);

    CU_ASSERT_FATAL(fd >= 0);
    render_range(fd, 0, n, 1, d, &sb);
    close(fd);
    sb_append(&sb, "", 0);
    return sb.data;
}

/*
 * The reference parser: the dialect of csv.h, one byte at a time, written
 * for clarity rather than speed. Renders all of 'data' like render_data.
 */
static char *
reference_render(const char *s, size_t n, const csv_dialect *d)
{
    strbuf   out = {0}, rec = {0}, field = {0};
    size_t   i = 0;
    uint64_t line = 1, rec_line = 0, field_line = 0;
    bool     quoted = false;
    enum { REC, FIELD, UNQ, QUO } st = REC;

    sb_append(&out, "", 0);
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    for (;;) {
        char c = i < n ? s[i] : 0;

        switch (st) {
        case REC: /* at a line start: an empty line, or a record */
            if (i == n)
                goto done;
            if (c == '\n') {
                line++;
                i++;
                continue;
            }
            if (c == '\r') { /* CR LF, or a lone CR */
                line++;
                i += i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
                continue;
            }
            rec_line = line;
            sb_reset(&rec);
            sb_printf(&rec, "L%llu ", (unsigned long long)rec_line);
            st = FIELD;
            continue;
        case FIELD: /* at a field start */
            sb_reset(&field);
            quoted = i < n && c == d->quote;
            field_line = line;
            if (quoted)
                i++;
            st = quoted ? QUO : UNQ;
            continue;
        case QUO: /* inside quotes */
            if (i == n) {
                sb_printf(&out,
                          "ERROR bad_data: unterminated quoted field "
                          "starting on line %llu\n",
                          (unsigned long long)field_line);
                goto done;
            }
            if (c == d->quote) {
                if (i + 1 < n && s[i + 1] == d->quote) {
                    sb_putc(&field, c);
                    i += 2;
                } else {
                    i++;
                    st = UNQ;
                }
                continue;
            }
            if (c == '\n' || (c == '\r' && !(i + 1 < n && s[i + 1] == '\n')))
                line++; /* an LF, or a lone CR: data that counts a line */
            sb_putc(&field, c);
            i++;
            continue;
        case UNQ: /* unquoted data, or after a closing quote */
            if (i < n && c != d->delim && c != '\n' && c != '\r') {
                sb_putc(&field, c);
                i++;
                continue;
            }
            sb_putc(&rec, quoted ? '{' : '[');
            render_bytes(&rec, field.data ? field.data : "", field.len);
            sb_putc(&rec, quoted ? '}' : ']');
            if (i < n && c == d->delim) {
                i++;
                st = FIELD;
                continue;
            }
            sb_putc(&rec, '\n');
            sb_append(&out, rec.data, rec.len);
            if (i == n)
                goto done;
            line++;
            i += c == '\r' && i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
            st = REC;
            continue;
        }
    }
done:
    sb_free(&rec);
    sb_free(&field);
    return out.data;
}

/* Check one input against its expected rendering, and the reference's. */
#define CHECK_CSV(data, d, exp) \
    check_csv(__FILE__, __LINE__, (data), sizeof(data) - 1, (d), (exp))

static void
check_csv(const char *file, int line, const char *data, size_t n,
          const csv_dialect *d, const char *exp)
{
    char  *got = render_data(data, n, d);
    char  *ref = reference_render(data, n, d);
    strbuf what = {0};

    sb_puts(&what, "input \"");
    render_bytes(&what, data, n);
    sb_puts(&what, "\"");
    check_text(file, line, what.data, exp, got);
    sb_puts(&what, " (reference parser)");
    check_text(file, line, what.data, exp, ref);
    /* The same with a buffer of a few bytes: refills everywhere. */
    for (size_t block = 1; block <= 4; block++) {
        char *small;

        csv_set_block_bytes_for_test(block);
        small = render_data(data, n, d);
        csv_set_block_bytes_for_test(0);
        sb_reset(&what);
        sb_printf(&what, "block %zu, input \"", block);
        render_bytes(&what, data, n);
        sb_puts(&what, "\"");
        check_text(file, line, what.data, exp, small);
        free(small);
    }
    sb_free(&what);
    free(got);
    free(ref);
}

static void
test_basic(void)
{
    CHECK_CSV("a,b,c\n1,2,3\n", &comma, "L1 [a][b][c]\nL2 [1][2][3]\n");
    CHECK_CSV("x\n", &comma, "L1 [x]\n");
    CHECK_CSV(" a , b \n", &comma, "L1 [ a ][ b ]\n");
    CHECK_CSV(",\n", &comma, "L1 [][]\n");
    CHECK_CSV(" \n", &comma, "L1 [ ]\n");
}

static void
test_quotes(void)
{
    CHECK_CSV("\"a\",\"b c\",d\n", &comma, "L1 {a}{b c}[d]\n");
    CHECK_CSV("\"he said \"\"hi\"\"\",\"\"\"\"\n", &comma,
              "L1 {he said \"hi\"}{\"}\n");
    CHECK_CSV("\"\"\"\"\"\"\n", &comma, "L1 {\"\"}\n");
    CHECK_CSV("\"a\"\"\",\"\"\"b\"\n", &comma, "L1 {a\"}{\"b}\n");
    /* A quote inside an unquoted field is an ordinary character. */
    CHECK_CSV("ab\"c,d\"\"e,f\"\n", &comma, "L1 [ab\"c][d\"\"e][f\"]\n");
    CHECK_CSV(" \"a\"\n", &comma, "L1 [ \"a\"]\n");
}

static void
test_after_closing_quote(void)
{
    /* As Python's csv: what follows a closing quote is appended. */
    CHECK_CSV("\"ab\"cd,\"x\"\"y\"z\"w\n", &comma, "L1 {abcd}{x\"yz\"w}\n");
    CHECK_CSV("\"a\" ,b\n", &comma, "L1 {a }[b]\n");
    CHECK_CSV("\"a\"x\"\"b\n", &comma, "L1 {ax\"\"b}\n");
    CHECK_CSV("\"a\"\"\"\"b\n", &comma,
              "ERROR bad_data: unterminated quoted field starting on "
              "line 1\n");
    CHECK_CSV("\"\"x\n", &comma, "L1 {x}\n");
    CHECK_CSV("\"a\"b\r\n", &comma, "L1 {ab}\n");
    /* A CR after a closing quote ends the record. */
    CHECK_CSV("\"a\"\r,b\n", &comma, "L1 {a}\nL2 [][b]\n");
}

static void
test_line_ends(void)
{
    CHECK_CSV("a,b\r\nc,d\r\n", &comma, "L1 [a][b]\nL2 [c][d]\n");
    /* LF, CR LF and lone CR (old Mac files) mixed, as pandas reads them:
     * CR LF is one line end; CR CR LF a line end and an empty line. */
    CHECK_CSV("a\rb,c\r\nd,e\nf\r\r\n", &comma,
              "L1 [a]\nL2 [b][c]\nL3 [d][e]\nL4 [f]\n");
    CHECK_CSV("a,b\rc,d\r", &comma, "L1 [a][b]\nL2 [c][d]\n");
    CHECK_CSV("a,b\rc,d", &comma, "L1 [a][b]\nL2 [c][d]\n");
    CHECK_CSV("\"a\"\r\n\"b\r\"\r\n", &comma, "L1 {a}\nL2 {b\\r}\n");
    CHECK_CSV("\rx\n", &comma, "L2 [x]\n");
    CHECK_CSV("a,\r\n", &comma, "L1 [a][]\n");
    CHECK_CSV("a,\r", &comma, "L1 [a][]\n");
    CHECK_CSV("a\r\rb\n", &comma, "L1 [a]\nL3 [b]\n");
    CHECK_CSV("a\n\rb\r\n\rc", &comma, "L1 [a]\nL3 [b]\nL5 [c]\n");
    /* Inside quotes a CR is data, and a lone one counts as a line. */
    CHECK_CSV("\"x\ry\",z\rw\r\n", &comma, "L1 {x\\ry}[z]\nL3 [w]\n");
    CHECK_CSV("\"x\r\ny\",z\rw\r\n", &comma, "L1 {x\\r\\ny}[z]\nL3 [w]\n");
    CHECK_CSV("\"x\"\"\r\",\"\r\"\r\"\r\"\r", &comma,
              "L1 {x\"\\r}{\\r}\nL4 {\\r}\n");
    CHECK_CSV("a,\"b\r\"\"\r\nc", &comma,
              "ERROR bad_data: unterminated quoted field starting on "
              "line 1\n");
    CHECK_CSV("\"\r\",\"b\r\"\"c", &comma,
              "ERROR bad_data: unterminated quoted field starting on "
              "line 2\n");
}

static void
test_no_final_newline(void)
{
    CHECK_CSV("a,b\nc,d", &comma, "L1 [a][b]\nL2 [c][d]\n");
    CHECK_CSV("a,\"b\"", &comma, "L1 [a]{b}\n");
    CHECK_CSV("a,", &comma, "L1 [a][]\n");
    CHECK_CSV("a,b\r", &comma, "L1 [a][b]\n");
    CHECK_CSV("\"a\"x", &comma, "L1 {ax}\n");
    CHECK_CSV("\"a\"\"\"", &comma, "L1 {a\"}\n");
    CHECK_CSV("x", &comma, "L1 [x]\n");
}

static void
test_empty_fields(void)
{
    CHECK_CSV(",,\n\"\",,\"\"\n", &comma, "L1 [][][]\nL2 {}[]{}\n");
    CHECK_CSV("a,,b\n", &comma, "L1 [a][][b]\n");
    CHECK_CSV("\"\"\n", &comma, "L1 {}\n");
}

static void
test_empty_lines(void)
{
    CHECK_CSV("\n\na\n\r\n\nb\n\n", &comma, "L3 [a]\nL6 [b]\n");
    CHECK_CSV("a\n\r", &comma, "L1 [a]\n");
    CHECK_CSV("\r\ra\r\r\r\nb\r\r", &comma, "L3 [a]\nL6 [b]\n");
    CHECK_CSV("\r", &comma, "");
    CHECK_CSV("\n", &comma, "");
    CHECK_CSV("\r\n\r\n", &comma, "");
    CHECK_CSV("a\n\n", &comma, "L1 [a]\n");
}

static void
test_utf8(void)
{
    CHECK_CSV("h\xC3\xA9llo,\xE6\x97\xA5\xE6\x9C\xAC\n"
              "\"\xC3\xBC,\xC3\xB6\",\xF0\x9F\x98\x80\n",
              &comma,
              "L1 [h\\xC3\\xA9llo][\\xE6\\x97\\xA5\\xE6\\x9C\\xAC]\n"
              "L2 {\\xC3\\xBC,\\xC3\\xB6}[\\xF0\\x9F\\x98\\x80]\n");
}

static void
test_header_only_and_empty(void)
{
    CHECK_CSV("id,name\n", &comma, "L1 [id][name]\n");
    CHECK_CSV("id,name", &comma, "L1 [id][name]\n");
    CHECK_CSV("", &comma, "");
}

static void
test_quoted_newlines_and_delims(void)
{
    CHECK_CSV("\"a\nb\",c\nd,\"e\r\nf\"\ng\n", &comma,
              "L1 {a\\nb}[c]\nL3 [d]{e\\r\\nf}\nL5 [g]\n");
    CHECK_CSV("\"a,b\",\",\"\n", &comma, "L1 {a,b}{,}\n");
    CHECK_CSV("\"\n\n\"\n\"\n\"", &comma, "L1 {\\n\\n}\nL4 {\\n}\n");
}

static void
test_bom(void)
{
    CHECK_CSV("\xEF\xBB\xBF\x61,b\n", &comma, "L1 [a][b]\n"); /* \x61: a */
    CHECK_CSV("\xEF\xBB\xBF", &comma, "");
    CHECK_CSV("\xEF\xBB\xBF\n", &comma, "");
    CHECK_CSV("\xEF\xBB\xBF\"q\"\n", &comma, "L1 {q}\n");
    /* Only at offset 0; a partial mark is data. */
    CHECK_CSV("x\n\xEF\xBB\xBFy\n", &comma, "L1 [x]\nL2 [\\xEF\\xBB\\xBFy]\n");
    CHECK_CSV("\xEF\xBB", &comma, "L1 [\\xEF\\xBB]\n");
}

static void
test_dialects(void)
{
    csv_dialect semi = {';', '"', 0, 0}, tab = {'\t', '"', 0, 0};
    csv_dialect squote = {',', '\'', 0, 0};

    CHECK_CSV("a;b,c;\"d;e\"\n", &semi, "L1 [a][b,c]{d;e}\n");
    CHECK_CSV("a\tb c\t\"x\ty\"\n", &tab, "L1 [a][b c]{x\\x09y}\n");
    CHECK_CSV("'it''s','a,b',\"c\"\n", &squote, "L1 {it's}{a,b}[\"c\"]\n");
}

/* Read 'data' and check the error rendering (and the reference's). */
static void
test_unterminated_quote(void)
{
    const char data[] = "a,b\nc,\"d\ne\nf\n";
    sh_err     err;
    csv_range *v = NULL;
    size_t     n = 99;
    int        fd, rc;

    CHECK_CSV("a,b\nc,\"d\ne\nf\n", &comma,
              "L1 [a][b]\nERROR bad_data: unterminated quoted field "
              "starting on line 2\n");
    /* The field opens on line 2 of a record that starts on line 1. */
    CHECK_CSV("a,\"x\ny\",\"z\n", &comma,
              "ERROR bad_data: unterminated quoted field starting on "
              "line 2\n");
    CHECK_CSV("\"", &comma,
              "ERROR bad_data: unterminated quoted field starting on "
              "line 1\n");
    CHECK_CSV("\n\n\"ab\"\"", &comma,
              "ERROR bad_data: unterminated quoted field starting on "
              "line 3\n");

    /* The splitter finds it too, and the reader keeps failing. */
    fd = th_temp_file(data, sizeof data - 1);
    CU_ASSERT_FATAL(fd >= 0);
    sh_err_clear(&err);
    rc = csv_split(fd, 0, 1, sizeof data - 1, &comma, 4, &v, &n, &err);
    CHECK_INT(SH_EDATA, rc);
    CHECK_INT(SH_EDATA, err.code);
    CHECK(strstr(err.msg, "line 2") != NULL, "message: %s", err.msg);
    CHECK(v == NULL && n == 0, "no ranges on error");

    csv_reader      *r = csv_reader_new(fd, 0, sizeof data - 1, 1, &comma);
    const csv_field *f;
    size_t           nf;

    CHECK_INT(1, csv_reader_next(r, &f, &nf, &err));
    CHECK_INT(SH_EDATA, csv_reader_next(r, &f, &nf, &err));
    sh_err_clear(&err);
    CHECK_INT(SH_EDATA, csv_reader_next(r, &f, &nf, &err));
    CHECK(strcmp(err.msg, "unterminated quoted field starting on "
                          "line 2")
              == 0,
          "message again: %s", err.msg);
    csv_reader_free(r);
    close(fd);
}

/* Invalid dialects, a zero partition size and a failing read. */
static void
test_errors(void)
{
    csv_dialect      bad[] = {{'\n', '"', 0, 0},
                              {',', ',', 0, 0},
                              {',', '\r', 0, 0}};
    csv_range       *v = NULL;
    size_t           n = 0;
    sh_err           err;
    int              fd = th_temp_file("a\n", 2);
    csv_reader      *r;
    const csv_field *f;

    CU_ASSERT_FATAL(fd >= 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(SH_EINVAL, csv_split(fd, 0, 1, 2, &bad[i], 10, &v, &n, &err));
        r = csv_reader_new(fd, 0, 2, 1, &bad[i]);
        CHECK_INT(SH_EINVAL, csv_reader_next(r, &f, &n, &err));
        csv_reader_free(r);
    }
    CHECK_INT(SH_EINVAL, csv_split(fd, 0, 1, 2, &comma, 0, &v, &n, &err));
    close(fd);

    /* A read that fails: a closed descriptor. */
    r = csv_reader_new(fd, 0, 2, 1, &comma);
    sh_err_clear(&err);
    CHECK_INT(SH_EIO, csv_reader_next(r, &f, &n, &err));
    CHECK(strstr(err.msg, "read at offset 0") != NULL, "message: %s", err.msg);
    csv_reader_free(r);
    CHECK_INT(SH_EIO, csv_split(fd, 0, 1, 2, &comma, 1, &v, &n, &err));
    csv_reader_free(NULL);
}

/* Line numbers, record offsets and the byte count, one record at a time. */
static void
test_offsets(void)
{
    /* Offsets: 0 BOM, 3 "h1,h2\r\n", 10 "\n", 11 "\"a\nb\",c\n",
     * 19 "\r\n", 21 "d\n", 23 "\"e\"" to EOF at 26. */
    const char data[] = "\xEF\xBB\xBFh1,h2\r\n\n\"a\nb\",c\n\r\nd\n\"e\"";
    static const struct {
        uint64_t line, start, offset;
    } exp[] = {{1, 3, 10}, {3, 11, 19}, {6, 21, 23}, {7, 23, 26}};
    const csv_field *f;
    size_t           nf, i = 0;
    sh_err           err;
    int              fd = th_temp_file(data, sizeof data - 1), rc;
    csv_reader      *r;

    CU_ASSERT_FATAL(fd >= 0);
    r = csv_reader_new(fd, 0, sizeof data - 1, 1, &comma);
    CHECK_INT(0, csv_reader_bytes(r));
    while ((rc = csv_reader_next(r, &f, &nf, &err)) == 1 && i < 4) {
        CHECK_INT(exp[i].line, csv_reader_line(r));
        CHECK_INT(exp[i].start, csv_reader_record_start(r));
        CHECK_INT(exp[i].offset, csv_reader_offset(r));
        CHECK_INT(exp[i].offset, csv_reader_bytes(r));
        i++;
    }
    CHECK_INT(0, rc);
    CHECK_INT(4, i);
    csv_reader_free(r);

    /* A range in the middle: records that start in [11, 22). The last one
     * starts at 21, before the end. */
    strbuf sb = {0};
    render_range(fd, 11, 22, 3, &comma, &sb);
    CHECK_TEXT("range [11, 22)", "L3 {a\\nb}[c]\nL6 [d]\n", sb.data);
    /* [11, 21): the empty line at 19 is skipped, "d" starts at the end. */
    sb_reset(&sb);
    render_range(fd, 11, 21, 3, &comma, &sb);
    CHECK_TEXT("range [11, 21)", "L3 {a\\nb}[c]\n", sb.data);
    /* A range ending inside a record reads that record to its end. */
    sb_reset(&sb);
    render_range(fd, 3, 12, 1, &comma, &sb);
    CHECK_TEXT("range [3, 12)", "L1 [h1][h2]\nL3 {a\\nb}[c]\n", sb.data);
    /* An empty range, and one past the end of the file. */
    sb_reset(&sb);
    render_range(fd, 11, 11, 3, &comma, &sb);
    render_range(fd, 40, 50, 9, &comma, &sb);
    CHECK_TEXT("empty ranges", "", sb.data ? sb.data : "");
    sb_free(&sb);

    /* The splitter's line numbers and starts on the same file. */
    csv_range *v = NULL;
    size_t     n = 0;

    CHECK_INT(0, csv_split(fd, 0, 1, sizeof data - 1, &comma, 1, &v, &n, &err));
    CHECK_INT(4, n);
    for (i = 0; i < n && i < 4; i++) {
        CHECK_INT(i == 0 ? 0 : exp[i].start, v[i].start);
        CHECK_INT(i == 3 ? sizeof data - 1 : exp[i + 1].start, v[i].end);
        CHECK_INT(exp[i].line, v[i].line);
    }
    free(v);
    /* After the header: data_start 10, line 2. */
    CHECK_INT(0, csv_split(fd, 10, 2, sizeof data - 1, &comma, 1000, &v, &n,
                           &err));
    CHECK_INT(1, n);
    if (n == 1) {
        CHECK_INT(10, v[0].start);
        CHECK_INT(sizeof data - 1, v[0].end);
        CHECK_INT(2, v[0].line);
    }
    free(v);
    close(fd);
}

/* A tiny deterministic random generator (splitmix64). */
static uint64_t
rnd(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Append 'n' bytes of unquoted-safe text (may hold '"' and CR inside). */
static void
gen_text(strbuf *sb, uint64_t *st, size_t n, bool quoted)
{
    static const char        ascii[] = "abz07 .x";
    static const char *const utf8[] = {"\xC3\xA9", "\xE2\x82\xAC",
                                       "\xF0\x9F\x98\x80"};

    for (size_t i = 0; i < n; i++) {
        unsigned k = (unsigned)(rnd(st) % 40);

        if (quoted && k == 0)
            sb_puts(sb, "\n");
        else if (quoted && k == 1)
            sb_puts(sb, "\r\n");
        else if (quoted && k == 2)
            sb_puts(sb, ",");
        else if (quoted && k == 3)
            sb_puts(sb, "\"\"");
        else if (!quoted && k == 4 && i > 0)
            sb_puts(sb, "\""); /* a literal quote mid-field */
        else if (k == 5 && i > 0 && i + 1 < n)
            sb_puts(sb, "\r"); /* a lone CR */
        else if (k % 4 == 0)
            sb_puts(sb, utf8[k % 3]);
        else
            sb_putc(sb, ascii[k % 8]);
    }
}

/*
 * An edge-case file: quoted fields with LF, CRLF, delimiters and "" inside,
 * text after closing quotes, empty lines, CRLF, LF and lone CR line ends
 * (a CR LF often straddles a block's end or a part size's multiple), records
 * longer than a kilobyte, and no final line end.
 */
static char *
gen_file(uint64_t seed, size_t target, size_t *n_out)
{
    strbuf   sb = {0};
    uint64_t st = seed;

    if (seed % 2 == 0)
        sb_puts(&sb, "\xEF\xBB\xBF");
    sb_puts(&sb, "id,text,note\r\n");
    while (sb.len < target) {
        unsigned nf = 1 + (unsigned)(rnd(&st) % 5), k;

        k = (unsigned)(rnd(&st) % 10);
        if (k == 0)
            sb_puts(&sb, "\n");
        else if (k == 1)
            sb_puts(&sb, "\r\n");
        else if (k == 2)
            sb_puts(&sb, "\r");
        for (unsigned i = 0; i < nf; i++) {
            if (i > 0)
                sb_putc(&sb, ',');
            switch (rnd(&st) % 8) {
            case 0: /* empty */
                break;
            case 1: /* quoted empty */
                sb_puts(&sb, "\"\"");
                break;
            case 2:
            case 3: /* unquoted */
                gen_text(&sb, &st, 1 + rnd(&st) % 12, false);
                break;
            case 4: /* long quoted: longer than many part sizes */
                if (rnd(&st) % 4 == 0) {
                    sb_putc(&sb, '"');
                    gen_text(&sb, &st, 300 + rnd(&st) % 900, true);
                    sb_putc(&sb, '"');
                    break;
                }
                /* fall through */
            default: /* quoted, sometimes with text after the quote */
                sb_putc(&sb, '"');
                gen_text(&sb, &st, rnd(&st) % 20, true);
                sb_putc(&sb, '"');
                if (rnd(&st) % 6 == 0)
                    gen_text(&sb, &st, 1 + rnd(&st) % 3, false);
                break;
            }
        }
        k = (unsigned)(rnd(&st) % 6);
        sb_puts(&sb, k < 2 ? "\r\n" : k == 2 ? "\r" : "\n");
    }
    /* No final line end. */
    sb_puts(&sb, "last,\"quoted\nend\"");
    *n_out = sb.len;
    return sb.data;
}

/*
 * Render as "start line" lines the ranges that the cut rule of csv.h asks
 * for, computed from the record starts of one reader: a record begins a
 * range when a multiple of 'part' past 'data_start' lies after the previous
 * record's start and at or before its own; the first range begins at
 * 'data_start'.
 */
static void
expected_ranges(int fd, uint64_t data_start, uint64_t line, size_t size,
                uint64_t part, const csv_dialect *d, strbuf *out)
{
    csv_reader      *r = csv_reader_new(fd, data_start, size, line, d);
    const csv_field *f;
    size_t           n;
    sh_err           err;
    uint64_t         prev = 0;
    bool             first = true;

    while (csv_reader_next(r, &f, &n, &err) == 1) {
        uint64_t at = csv_reader_record_start(r);

        if (first)
            sb_printf(out, "%llu %llu\n", (unsigned long long)data_start,
                      (unsigned long long)line);
        else if ((at - data_start) / part > (prev - data_start) / part)
            sb_printf(out, "%llu %llu\n", (unsigned long long)at,
                      (unsigned long long)csv_reader_line(r));
        first = false;
        prev = at;
    }
    csv_reader_free(r);
    sb_append(out, "", 0);
}

/*
 * Split 'fd' ('size' bytes, records from 'data_start' on line 'line') with
 * 'part' and check the ranges (against the cut rule too); returns the
 * concatenated rendering of the ranges, each read by its own reader.
 */
static char *
split_and_read(int fd, uint64_t data_start, uint64_t line, size_t size,
               uint64_t part, const csv_dialect *d)
{
    csv_range *v = NULL;
    size_t     n = 0;
    sh_err     err;
    strbuf     sb = {0};
    bool       ok = true;
    int        rc;

    sh_err_clear(&err);
    rc = csv_split(fd, data_start, line, size, d, part, &v, &n, &err);
    if (rc != 0)
        CHECK_INT(0, rc);
    if (n == 0 || v[0].start != data_start || v[n - 1].end != size) {
        CHECK(false, "part %llu: %zu ranges, must cover [%llu, %zu)",
              (unsigned long long)part, n, (unsigned long long)data_start,
              size);
        ok = false;
    }
    for (size_t i = 0; ok && i < n; i++) {
        size_t mark = sb.len;

        if (v[i].start >= v[i].end
            || (i + 1 < n && v[i].end != v[i + 1].start)) {
            CHECK(false,
                  "part %llu: range %zu [%llu, %llu) empty or "
                  "not contiguous",
                  (unsigned long long)part, i, (unsigned long long)v[i].start,
                  (unsigned long long)v[i].end);
            ok = false;
        }
        render_range(fd, v[i].start, v[i].end, v[i].line, d, &sb);
        if (sb.len == mark) {
            CHECK(false,
                  "part %llu: range %zu [%llu, %llu) has no "
                  "record",
                  (unsigned long long)part, i, (unsigned long long)v[i].start,
                  (unsigned long long)v[i].end);
            ok = false;
        }
    }
    /* The cuts are where the rule puts them. */
    {
        strbuf exp = {0}, got = {0};
        char   what[64];

        expected_ranges(fd, data_start, line, size, part, d, &exp);
        sb_append(&got, "", 0);
        for (size_t i = 0; i < n; i++)
            sb_printf(&got, "%llu %llu\n", (unsigned long long)v[i].start,
                      (unsigned long long)v[i].line);
        if (strcmp(exp.data, got.data) != 0) {
            snprintf(what, sizeof what, "ranges for part %llu",
                     (unsigned long long)part);
            CHECK_TEXT(what, exp.data, got.data);
        }
        sb_free(&exp);
        sb_free(&got);
    }
    free(v);
    sb_append(&sb, "", 0);
    return sb.data;
}

/*
 * The splitter's property: for every part size, the ranges read one by one
 * give exactly the records and line numbers of one reader over the file.
 * Seed 1 tries every part size from 1 to past the file's size; seed 2 every
 * one to 1024, then every 7th (to keep the valgrind run short).
 */
static void
test_split_property(void)
{
    for (uint64_t seed = 1; seed <= 2; seed++) {
        size_t size;
        char  *data = gen_file(seed, 5000, &size);
        int    fd = th_temp_file(data, size);
        char  *whole, *ref;
        size_t bad = 0;

        CU_ASSERT_FATAL(fd >= 0);
        whole = render_data(data, size, &comma);
        ref = reference_render(data, size, &comma);
        CHECK_TEXT("generated file vs reference parser", ref, whole);
        CHECK(strstr(whole, "ERROR") == NULL, "generated file reads");
        /* The file holds what it is meant to exercise. */
        CHECK(memmem(data, size, "\n\n", 2) != NULL
                  && memmem(data, size, "\n\r\n", 3) != NULL
                  && memmem(data, size, "\r\r", 2) != NULL
                  && memmem(data, size, "\"\"", 2) != NULL
                  && strstr(whole, "\\r\\n") != NULL && data[size - 1] != '\n',
              "seed %llu: edge cases present", (unsigned long long)seed);
        /* Some records are longer than a kilobyte (part=1: one range a
         * record). */
        {
            csv_range *v = NULL;
            size_t     n = 0;
            uint64_t   longest = 0;
            sh_err     err;

            CHECK_INT(0, csv_split(fd, 0, 1, size, &comma, 1, &v, &n, &err));
            for (size_t i = 0; i < n; i++)
                if (v[i].end - v[i].start > longest)
                    longest = v[i].end - v[i].start;
            CHECK(n > 20 && longest > 1000,
                  "seed %llu: %zu records, "
                  "longest %llu bytes",
                  (unsigned long long)seed, n, (unsigned long long)longest);
            free(v);
        }
        /* A block larger than the file reads as the default 1 MiB does,
         * and is much cheaper to allocate thousands of times (ASan). */
        csv_set_block_bytes_for_test(16384);
        for (uint64_t part = 1; part <= size + 1 && bad < 3;
             part += seed == 1 || part < 1024 ? 1 : 7) {
            char *got = split_and_read(fd, 0, 1, size, part, &comma);

            if (strcmp(got, whole) != 0) {
                char what[64];

                snprintf(what, sizeof what, "seed %llu part %llu",
                         (unsigned long long)seed, (unsigned long long)part);
                CHECK_TEXT(what, whole, got);
                bad++;
            }
            free(got);
        }
        csv_set_block_bytes_for_test(0);
        CHECK_INT(0, bad);

        /* After the header, as a job with a header row splits. */
        {
            const char *nl = strchr(data, '\n');
            uint64_t    ds = (uint64_t)(nl - data) + 1;
            char       *rest = NULL;
            strbuf      sb = {0};

            render_range(fd, ds, size, 2, &comma, &sb);
            sb_append(&sb, "", 0);
            for (uint64_t part = 1; part <= size; part += 1 + part / 8) {
                rest = split_and_read(fd, ds, 2, size, part, &comma);
                if (strcmp(rest, sb.data) != 0) {
                    CHECK_TEXT("after the header", sb.data, rest);
                    free(rest);
                    break;
                }
                free(rest);
            }
            sb_free(&sb);
        }

        /* Tiny read blocks in the splitter and in the readers. */
        for (size_t block = 1; block <= 9; block += 2) {
            csv_set_block_bytes_for_test(block);
            for (uint64_t part = 1; part <= size; part = part * 3 + 1) {
                char *got = split_and_read(fd, 0, 1, size, part, &comma);
                char  what[64];

                snprintf(what, sizeof what, "block %zu part %llu", block,
                         (unsigned long long)part);
                CHECK_TEXT(what, whole, got);
                free(got);
            }
            csv_set_block_bytes_for_test(0);
        }
        free(whole);
        free(ref);
        free(data);
        close(fd);
    }
}

/* Splitting files with no record, and records past 'file_size'. */
static void
test_split_small(void)
{
    static const char *const none[] = {
        "", "\n", "\r\n\n", "\xEF\xBB\xBF", "\xEF\xBB\xBF\r\n", "\r"};
    csv_range *v = NULL;
    size_t     n = 0;
    sh_err     err;

    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        size_t len = strlen(none[i]);
        int    fd = th_temp_file(none[i], len);

        CU_ASSERT_FATAL(fd >= 0);
        for (uint64_t part = 1; part <= 4; part++) {
            n = 99;
            CHECK_INT(0, csv_split(fd, 0, 1, len, &comma, part, &v, &n, &err));
            CHECK(n == 0 && v == NULL, "\"%s\" part %llu: %zu ranges", none[i],
                  (unsigned long long)part, n);
            free(v);
        }
        close(fd);
    }

    /* Empty lines before the first record stay in the first range. */
    const char data[] = "\n\n\nabc\nd\n";
    int        fd = th_temp_file(data, sizeof data - 1);

    CU_ASSERT_FATAL(fd >= 0);
    CHECK_INT(0, csv_split(fd, 0, 1, sizeof data - 1, &comma, 1, &v, &n, &err));
    CHECK_INT(2, n);
    if (n == 2) {
        CHECK_INT(0, v[0].start);
        CHECK_INT(1, v[0].line);
        CHECK_INT(7, v[1].start);
        CHECK_INT(5, v[1].line);
    }
    free(v);
    /* A huge part size: one range, no overflow. */
    CHECK_INT(0, csv_split(fd, 2, 3, sizeof data - 1, &comma, UINT64_MAX, &v,
                           &n, &err));
    CHECK_INT(1, n);
    free(v);
    /* data_start at the end: no data. */
    CHECK_INT(0, csv_split(fd, sizeof data - 1, 1, sizeof data - 1, &comma, 1,
                           &v, &n, &err));
    CHECK_INT(0, n);
    free(v);
    close(fd);
}

/*
 * Random byte soup over the characters that matter, read with several block
 * sizes, against the reference parser (errors included).
 */
static void
test_reference_fuzz(void)
{
    static const char  alphabet[] = "ab,\"\n\r;'\xC3\xA9";
    const csv_dialect *dialects[] = {&comma, &(csv_dialect){';', '\'', 0, 0}};
    uint64_t           st = 42;
    size_t             bad = 0;

    for (int iter = 0; iter < 3000 && bad < 3; iter++) {
        size_t             n = rnd(&st) % 64;
        char               data[64];
        const csv_dialect *d = dialects[iter % 2];
        char              *ref, *got;

        for (size_t i = 0; i < n; i++)
            data[i] = alphabet[rnd(&st) % (sizeof alphabet - 1)];
        if (iter % 7 == 0 && n >= 3)
            memcpy(data, "\xEF\xBB\xBF", 3);
        ref = reference_render(data, n, d);
        csv_set_block_bytes_for_test(1 + (size_t)iter % 5);
        got = render_data(data, n, d);
        csv_set_block_bytes_for_test(0);
        if (strcmp(ref, got) != 0) {
            strbuf what = {0};

            sb_printf(&what, "fuzz %d, input \"", iter);
            render_bytes(&what, data, n);
            sb_puts(&what, "\"");
            CHECK_TEXT(what.data, ref, got);
            sb_free(&what);
            bad++;
        }
        free(ref);
        free(got);
    }
    CHECK_INT(0, bad);
}

/* Fields longer than the read block: the buffer grows, records stay whole. */
static void
test_long_fields(void)
{
    strbuf sb = {0}, exp = {0};
    char  *got;

    for (int i = 0; i < 3; i++) {
        sb_putc(&sb, '"');
        sb_putc(&exp, '{');
        for (int j = 0; j < 5000 * (i + 1); j++) {
            sb_puts(&sb, j % 100 == 0 ? "\"\"" : "x");
            sb_puts(&exp, j % 100 == 0 ? "\"" : "x");
        }
        sb_puts(&sb, "\",y\n");
        sb_puts(&exp, "}[y]\n");
    }
    csv_set_block_bytes_for_test(1000);
    got = render_data(sb.data, sb.len, &comma);
    csv_set_block_bytes_for_test(0);
    /* Line numbers: one record a line. */
    {
        strbuf e2 = {0};
        char  *line = exp.data;

        for (int i = 1; i <= 3; i++) {
            char *nl = strchr(line, '\n');

            sb_printf(&e2, "L%d ", i);
            sb_append(&e2, line, (size_t)(nl - line) + 1);
            line = nl + 1;
        }
        CHECK_TEXT("long fields", e2.data, got);
        sb_free(&e2);
    }
    free(got);
    sb_free(&sb);
    sb_free(&exp);
}

/* ---- lines mode and the pull reader ------------------------------------ */

static const csv_dialect lines_d = {',', '"', 0, 1};

/*
 * The reference of lines mode, byte by byte: a BOM at the start skipped,
 * each line end (LF, CR LF, lone CR: Python's universal newlines) ends a
 * record of one field, the data's end after a line end is no record.
 */
static char *
reference_lines(const char *s, size_t n)
{
    strbuf   out = {0};
    size_t   i = 0, from;
    uint64_t line = 1;

    sb_append(&out, "", 0);
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < n) {
        size_t end;

        from = i;
        while (i < n && s[i] != '\n' && s[i] != '\r')
            i++;
        end = i;
        sb_printf(&out, "L%llu [", (unsigned long long)line);
        render_bytes(&out, s + from, end - from);
        sb_puts(&out, "]\n");
        if (i < n)
            i += s[i] == '\r' && i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
        line++;
    }
    return out.data;
}

/* Lines mode against its reference, with small blocks, and every split. */
static void
test_lines_mode(void)
{
    static const char alphabet[] = "ab,\"\n\r\xEF\xBB\xBF";
    uint64_t          st = 7;
    size_t            bad = 0;

    static const struct {
        const char *in, *exp;
    } cases[] = {
        {"a,\"b\nc\"\r\n\nd\r", "L1 [a,\"b]\nL2 [c\"]\nL3 []\nL4 [d]\n"},
        {"\xEF\xBB\xBFx\n\n", "L1 [x]\nL2 []\n"},
        {"\r\n", "L1 []\n"},
        {"\r", "L1 []\n"},
        {"a\rb\r\rc\r\n\r\nd\n\re", "L1 [a]\nL2 [b]\nL3 []\nL4 [c]\nL5 []\n"
                                    "L6 [d]\nL7 []\nL8 [e]\n"},
        {"a\r", "L1 [a]\n"},
        {"", ""},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in);
        char  *got = render_data(cases[i].in, n, &lines_d);
        char  *ref = reference_lines(cases[i].in, n);

        CHECK_TEXT(cases[i].in, cases[i].exp, got);
        CHECK_TEXT(cases[i].in, cases[i].exp, ref);
        free(got);
        free(ref);
    }
    for (int iter = 0; iter < 600 && bad < 3; iter++) {
        size_t n = rnd(&st) % 48;
        char   data[48];
        char  *ref, *got;

        for (size_t i = 0; i < n; i++)
            data[i] = alphabet[rnd(&st) % (sizeof alphabet - 1)];
        if (iter % 5 == 0 && n >= 3)
            memcpy(data, "\xEF\xBB\xBF", 3);
        ref = reference_lines(data, n);
        csv_set_block_bytes_for_test(1 + (size_t)iter % 4);
        got = render_data(data, n, &lines_d);
        csv_set_block_bytes_for_test(0);
        if (strcmp(ref, got) != 0) {
            CHECK_TEXT("lines fuzz", ref, got);
            bad++;
        }
        free(ref);
        free(got);
        /* Every part size: the same lines, cut at line starts. */
        if (iter % 50 == 0 && n > 0) {
            int   fd = th_temp_file(data, n);
            char *whole = render_data(data, n, &lines_d);

            CU_ASSERT_FATAL(fd >= 0);
            for (uint64_t part = 1; part <= n + 1; part++) {
                got = split_and_read(fd, 0, 1, n, part, &lines_d);
                if (strcmp(whole, got) != 0 && bad++ < 3)
                    CHECK_TEXT("lines split", whole, got);
                free(got);
            }
            free(whole);
            close(fd);
        }
    }
    /* A generated CSV file read as lines: every part size. */
    {
        size_t size;
        char  *data = gen_file(3, 3000, &size);
        int    fd = th_temp_file(data, size);
        char  *whole = render_data(data, size, &lines_d);
        char  *ref = reference_lines(data, size);

        CU_ASSERT_FATAL(fd >= 0);
        CHECK_TEXT("generated file as lines", ref, whole);
        csv_set_block_bytes_for_test(4096);
        for (uint64_t part = 1; part <= size + 1 && bad < 3;
             part += part < 256 ? 1 : 1 + part / 16) {
            char *got = split_and_read(fd, 0, 1, size, part, &lines_d);

            if (strcmp(whole, got) != 0) {
                CHECK_TEXT("generated lines split", whole, got);
                bad++;
            }
            free(got);
        }
        csv_set_block_bytes_for_test(0);
        free(whole);
        free(ref);
        free(data);
        close(fd);
    }
    CHECK_INT(0, bad);
}

/* A stream in memory, given out in short reads of 1..max bytes. */
typedef struct mem_stream {
    const char *data;
    size_t      n, at;
    size_t      max;     /* most bytes a read gives */
    uint64_t    st;      /* random state for the read sizes */
    size_t      fail_at; /* fail with SH_EIO once 'at' reaches this */
} mem_stream;

static ssize_t
mem_read(void *ctx, char *buf, size_t n, sh_err *err)
{
    mem_stream *m = ctx;
    size_t      k = 1 + rnd(&m->st) % m->max;

    if (m->at >= m->fail_at)
        return sh_err_set(err, SH_EIO, NULL, "injected failure");
    if (k > n)
        k = n;
    if (k > m->n - m->at)
        k = m->n - m->at;
    memcpy(buf, m->data + m->at, k);
    m->at += k;
    return (ssize_t)k;
}

/* Render a whole stream read through csv_reader_new_fn. */
static char *
render_fn(mem_stream *m, const csv_dialect *d)
{
    csv_reader      *r = csv_reader_new_fn(mem_read, m, 1, d);
    const csv_field *f;
    size_t           n;
    strbuf           sb = {0};
    sh_err           err;
    int              rc;

    sb_append(&sb, "", 0);
    while ((rc = csv_reader_next(r, &f, &n, &err)) == 1)
        render_record(&sb, csv_reader_line(r), f, n);
    if (rc != 0)
        sb_printf(&sb, "ERROR %s: %s\n", sh_err_name(rc), err.msg);
    if (rc == 0 && csv_reader_bytes(r) != m->n)
        sb_printf(&sb, "BYTES %llu of %zu\n",
                  (unsigned long long)csv_reader_bytes(r), m->n);
    csv_reader_free(r);
    return sb.data;
}

/* The pull reader gives what the file reader gives, whatever the reads. */
static void
test_reader_fn(void)
{
    size_t size;
    char  *data = gen_file(4, 20000, &size);
    char  *whole = render_data(data, size, &comma);
    char  *lines = render_data(data, size, &lines_d);

    for (size_t max = 1; max <= 4097; max = max * 4 + 1) {
        for (size_t block = 0; block <= 64; block += 64) {
            mem_stream m = {data, size, 0, max, max, SIZE_MAX};
            char      *got;

            csv_set_block_bytes_for_test(block);
            got = render_fn(&m, &comma);
            CHECK_TEXT("pull reader", whole, got);
            free(got);
            m.at = 0;
            got = render_fn(&m, &lines_d);
            CHECK_TEXT("pull reader, lines", lines, got);
            free(got);
            csv_set_block_bytes_for_test(0);
        }
    }
    /* An error of the source is the reader's error, and stays. */
    {
        mem_stream       m = {data, size, 0, 100, 1, 5000};
        csv_reader      *r = csv_reader_new_fn(mem_read, &m, 1, &comma);
        const csv_field *f;
        size_t           n;
        sh_err           err;
        int              rc;

        csv_set_block_bytes_for_test(1000);
        while ((rc = csv_reader_next(r, &f, &n, &err)) == 1)
            ;
        CHECK_INT(SH_EIO, rc);
        CHECK(strcmp(err.msg, "injected failure") == 0, "%s", err.msg);
        sh_err_clear(&err);
        CHECK_INT(SH_EIO, csv_reader_next(r, &f, &n, &err));
        CHECK(strcmp(err.msg, "injected failure") == 0, "%s", err.msg);
        csv_set_block_bytes_for_test(0);
        csv_reader_free(r);
    }
    free(whole);
    free(lines);
    free(data);
}

/* A record past the length limit, or with too many fields, is an error
 * that names its line and offset; the reader never grows past the limit. */
static void
test_limits(void)
{
    static const csv_dialect comma = {',', '"', 0, 0};
    strbuf                   data = {0};
    char                    *got;
    size_t                   i;

    csv_set_limits(4096, 3);
    sb_puts(&data, "a,b,c\n1,2,3\n");
    for (i = 0; i < 5000; i++)
        sb_putc(&data, 'x');
    sb_puts(&data, "\n");
    got = render_data(data.data, data.len, &comma);
    CHECK(strstr(got, "ERROR bad_data: the record on line 3 (byte offset "
                      "12) is longer than 4096 bytes")
              != NULL,
          "long record: %s", got);
    free(got);
    got = render_data("a,b,c\n1,2,3,4\n", 14, &comma);
    CHECK(strstr(got, "ERROR bad_data: the record on line 2 (byte offset "
                      "6) has more than 3 columns")
              != NULL,
          "wide record: %s", got);
    free(got);
    csv_set_limits(0, 0);
    got = render_data(data.data, data.len, &comma);
    CHECK(strstr(got, "ERROR") == NULL, "defaults: %s", got);
    free(got);
    sb_free(&data);
}

/*
 * csv_split_fn and csv_reader_new_range_fn (s3:// inputs read a stream
 * from a range's start) cut and read exactly as csv_split and
 * csv_reader_new over the same file.
 */
static void
test_split_fn_matches_fd(void)
{
    size_t   size;
    char    *data = gen_file(3, 20000, &size);
    int      fd = th_temp_file(data, size);
    uint64_t parts[] = {1, 7, 100, 1000, 4096, 1 << 20};
    size_t   k;

    CU_ASSERT_FATAL(fd >= 0);
    for (k = 0; k < sizeof parts / sizeof parts[0]; k++) {
        csv_range *a = NULL, *b = NULL;
        size_t     na = 0, nb = 0, i;
        mem_stream m = {data, size, 0, 333, 1, SIZE_MAX};
        sh_err     err;

        CHECK_INT(0,
                  csv_split(fd, 0, 1, size, &comma, parts[k], &a, &na, &err));
        CHECK_INT(0, csv_split_fn(mem_read, &m, 0, 1, size, &comma, parts[k],
                                  &b, &nb, &err));
        CHECK(na == nb && memcmp(a, b, na * sizeof *a) == 0,
              "part %llu: %zu ranges by fd, %zu by stream",
              (unsigned long long)parts[k], na, nb);
        for (i = 0; i < na && i < 40; i++) {
            strbuf           want = {0}, got = {0};
            mem_stream       ms = {data, size, a[i].start, 4096, 2, SIZE_MAX};
            csv_reader      *r;
            const csv_field *f;
            size_t           n;
            int              rc;

            render_range(fd, a[i].start, a[i].end, a[i].line, &comma, &want);
            r = csv_reader_new_range_fn(mem_read, &ms, a[i].start, a[i].end,
                                        a[i].line, &comma);
            while ((rc = csv_reader_next(r, &f, &n, &err)) == 1)
                render_record(&got, csv_reader_line(r), f, n);
            CHECK_INT(0, rc);
            csv_reader_free(r);
            sb_append(&want, "", 0);
            sb_append(&got, "", 0);
            CHECK_TEXT("range by stream", want.data, got.data);
            sb_free(&want);
            sb_free(&got);
        }
        free(a);
        free(b);
    }
    close(fd);
    free(data);
}

void
test_csv_register(void)
{
    CU_pSuite s = CU_add_suite("csv", NULL, NULL);

    if (s == NULL)
        return;
    CU_add_test(s, "basic records", test_basic);
    CU_add_test(s, "quoted and doubled quotes", test_quotes);
    CU_add_test(s, "text after a closing quote", test_after_closing_quote);
    CU_add_test(s, "LF, CRLF, lone CR", test_line_ends);
    CU_add_test(s, "no final newline", test_no_final_newline);
    CU_add_test(s, "empty fields", test_empty_fields);
    CU_add_test(s, "empty lines", test_empty_lines);
    CU_add_test(s, "UTF-8 content", test_utf8);
    CU_add_test(s, "header only, empty file", test_header_only_and_empty);
    CU_add_test(s, "quoted newlines and delimiters",
                test_quoted_newlines_and_delims);
    CU_add_test(s, "byte-order mark", test_bom);
    CU_add_test(s, "other delimiters and quotes", test_dialects);
    CU_add_test(s, "unterminated quote", test_unterminated_quote);
    CU_add_test(s, "invalid dialect, read errors", test_errors);
    CU_add_test(s, "line numbers and offsets", test_offsets);
    CU_add_test(s, "long fields, small blocks", test_long_fields);
    CU_add_test(s, "reader vs reference parser", test_reference_fuzz);
    CU_add_test(s, "split: files without records", test_split_small);
    CU_add_test(s, "split: every part size", test_split_property);
    CU_add_test(s, "split and read over a stream", test_split_fn_matches_fd);
    CU_add_test(s, "lines mode", test_lines_mode);
    CU_add_test(s, "pull reader", test_reader_fn);
    CU_add_test(s, "record and column limits", test_limits);
}
