/*
 * test_s3.c - unit tests of lib/s3 that need no server: SigV4 query
 * signing against AWS's documented example, the parsing of s3:// URLs,
 * request URLs and their encoding, and the XML answers (listing pages,
 * errors, entities). The requests themselves are tested against s3rver by
 * tests/integration/test_s3.py.
 */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/s3.h"
#include "../../lib/util.h"
#include "test_suites.h"

/* AWS's example of a presigned GET ("Authenticating Requests: Using Query
 * Parameters (AWS Signature Version 4)"): its signature is documented. */
static void
test_presign_aws_example(void)
{
    char *url = s3_presign("GET", "https://examplebucket.s3.amazonaws.com",
                           "examplebucket.s3.amazonaws.com", "/test.txt",
                           "us-east-1", "AKIAIOSFODNN7EXAMPLE",
                           "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL,
                           "20130524T000000Z", 86400);

    CU_ASSERT_STRING_EQUAL(
        url,
        "https://examplebucket.s3.amazonaws.com/test.txt"
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3"
        "%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
        "&X-Amz-SignedHeaders=host&X-Amz-Signature="
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    free(url);
}

/* s3_presign_get: path-style against an endpoint, the time and expiry in
 * the query, a token when there is one. */
static void
test_presign_get_endpoint(void)
{
    s3_config c = {0};
    char     *url;

    c.endpoint = "http://127.0.0.1:9000";
    c.region = "eu-west-1";
    c.access_key = "AK";
    c.secret_key = "SK";
    c.session_token = "tok/en";
    url = s3_presign_get(&c, "bkt", "dir/a b.csv", 10 * 86400, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(url, "http://127.0.0.1:9000/bkt/dir/"
                                       "a%20b.csv?X-Amz-Algorithm="));
    CU_ASSERT_PTR_NOT_NULL(strstr(url, "&X-Amz-Credential=AK%2F19700101%2F"
                                       "eu-west-1%2Fs3%2Faws4_request&"));
    CU_ASSERT_PTR_NOT_NULL(strstr(url, "&X-Amz-Date=19700101T000000Z&"));
    /* Capped at 7 days. */
    CU_ASSERT_PTR_NOT_NULL(strstr(url, "&X-Amz-Expires=604800&"));
    CU_ASSERT_PTR_NOT_NULL(strstr(url, "&X-Amz-Security-Token=tok%2Fen&"
                                       "X-Amz-SignedHeaders=host&"));
    CU_ASSERT_EQUAL(strlen(strstr(url, "&X-Amz-Signature=")),
                    strlen("&X-Amz-Signature=") + 64);
    free(url);
}

static void
test_parse_url(void)
{
    char  *b, *k;
    sh_err e;

    CU_ASSERT_EQUAL(
        s3_parse_url("s3://my-bucket/a/b.csv", 0, "input.path", &b, &k, &e), 0);
    CU_ASSERT_STRING_EQUAL(b, "my-bucket");
    CU_ASSERT_STRING_EQUAL(k, "a/b.csv");
    free(b);
    free(k);
    CU_ASSERT_EQUAL(s3_parse_url("s3://bkt", 1, "f", &b, &k, &e), 0);
    CU_ASSERT_STRING_EQUAL(k, "");
    free(b);
    free(k);
    CU_ASSERT_EQUAL(s3_parse_url("s3://bkt/", 0, "f", &b, &k, &e), SH_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "no object"));
    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT_EQUAL(s3_parse_url("s3://Bad_Bucket/k", 0, "f", &b, &k, &e),
                    SH_EINVAL);
    CU_ASSERT_STRING_EQUAL(e.path, "f");
    CU_ASSERT_EQUAL(s3_parse_url("s3://ab/k", 0, "f", &b, &k, &e), SH_EINVAL);
    CU_ASSERT_EQUAL(s3_parse_url("s3://bkt/a\nb", 0, "f", &b, &k, &e),
                    SH_EINVAL);
    CU_ASSERT_EQUAL(s3_parse_url("http://bkt/k", 0, "f", &b, &k, &e),
                    SH_EINVAL);
    CU_ASSERT(s3_is_url("s3://x"));
    CU_ASSERT(!s3_is_url("data/s3://x"));
}

static void
test_request_url(void)
{
    s3_config c = {0};
    char     *u;

    c.region = "us-west-2";
    u = s3_request_url(&c, "bkt", "a b/ü+x.csv", NULL);
    CU_ASSERT_STRING_EQUAL(
        u, "https://bkt.s3.us-west-2.amazonaws.com/a%20b/%C3%BC%2Bx.csv");
    free(u);
    c.endpoint = "http://127.0.0.1:9000";
    u = s3_request_url(&c, "bkt", NULL, "list-type=2&prefix=a%2F");
    CU_ASSERT_STRING_EQUAL(u, "http://127.0.0.1:9000/bkt/"
                              "?list-type=2&prefix=a%2F");
    free(u);
    u = s3_uri_encode("a/b~c_d.e-f*", 0);
    CU_ASSERT_STRING_EQUAL(u, "a%2Fb~c_d.e-f%2A");
    free(u);
}

static void
test_xml_list(void)
{
    const char *page =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>bkt</Name><Prefix>d/</Prefix><KeyCount>2</KeyCount>"
        "<IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>t&amp;1</NextContinuationToken>"
        "<Contents><Key>d/a&amp;b&#233;.csv</Key>"
        "<LastModified>2024-01-01T00:00:00.000Z</LastModified>"
        "<ETag>&quot;abc123&quot;</ETag><Size>1234</Size></Contents>"
        "<Contents><Key>d/&lt;x&gt;&#x41;</Key><Size>0</Size>"
        "<ETag>\"e2\"</ETag></Contents>"
        "</ListBucketResult>";
    s3_object *objs = NULL;
    size_t     n = 0, cap = 0;
    char      *tok = NULL;
    sh_err     e;

    CU_ASSERT_EQUAL_FATAL(
        s3_xml_list_page(page, strlen(page), &objs, &n, &cap, &tok, &e), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(objs[0].key, "d/a&b\xc3\xa9.csv");
    CU_ASSERT_EQUAL(objs[0].size_bytes, 1234);
    CU_ASSERT_STRING_EQUAL(objs[0].etag, "abc123");
    CU_ASSERT_STRING_EQUAL(objs[1].key, "d/<x>A");
    CU_ASSERT_EQUAL(objs[1].size_bytes, 0);
    CU_ASSERT_STRING_EQUAL(objs[1].etag, "e2");
    CU_ASSERT_STRING_EQUAL(tok, "t&1");
    free(tok);
    s3_objects_free(objs, n);
}

static void
test_xml_bad(void)
{
    const char *bad[] = {
        "<Error><Code>NoSuchBucket</Code></Error>",
        "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size>"
        "</Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>12x</Size>"
        "</Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key>",
        "<ListBucketResult><IsTruncated>true</IsTruncated>"
        "</ListBucketResult>",
    };
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s3_object *objs = NULL;
        size_t     n = 0, cap = 0;
        char      *tok = NULL;
        sh_err     e;

        CU_ASSERT_EQUAL(s3_xml_list_page(bad[i], strlen(bad[i]), &objs, &n,
                                         &cap, &tok, &e),
                        SH_EDATA);
        CU_ASSERT_PTR_NULL(tok);
        s3_objects_free(objs, n);
    }
}

static void
test_xml_text(void)
{
    const char *x = "<Error><Code>SlowDown</Code><Message>a &amp; b &#0; "
                    "&#xD800; &bogus;</Message></Error><Code>2</Code>";
    size_t      pos = 0;
    char       *s;

    s = s3_xml_text(x, strlen(x), "Code", &pos);
    CU_ASSERT_STRING_EQUAL(s, "SlowDown");
    free(s);
    /* Invalid references (NUL, a surrogate) stay as text. */
    s = s3_xml_text(x, strlen(x), "Message", &pos);
    CU_ASSERT_STRING_EQUAL(s, "a & b &#0; &#xD800; &bogus;");
    free(s);
    s = s3_xml_text(x, strlen(x), "Code", &pos);
    CU_ASSERT_STRING_EQUAL(s, "2");
    free(s);
    CU_ASSERT_PTR_NULL(s3_xml_text(x, strlen(x), "Code", &pos));
    /* Bounded by the length given, not by a NUL. */
    CU_ASSERT_PTR_NULL(s3_xml_text(x, 15, "Code", NULL));
}

void
test_s3_register(void)
{
    CU_pSuite s = CU_add_suite("s3", NULL, NULL);

    CU_add_test(s, "presign: AWS example", test_presign_aws_example);
    CU_add_test(s, "presign: endpoint", test_presign_get_endpoint);
    CU_add_test(s, "s3:// URLs", test_parse_url);
    CU_add_test(s, "request URLs", test_request_url);
    CU_add_test(s, "XML listing", test_xml_list);
    CU_add_test(s, "XML bad listings", test_xml_bad);
    CU_add_test(s, "XML text", test_xml_text);
}
