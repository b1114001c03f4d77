/*
 * fuzz_spec.c - libFuzzer harness of the job-spec validator and planner
 * (plan.h): the input is the body of POST /v1/jobs, a JSON text.
 *
 * The data root (made once) holds a few small inputs the specs can name:
 * t.csv (int, string, float, bool and text columns, one with a space in
 * its name), u.csv (a join side), t.jsonl, t.txt, t.csv.gz, logs/a.csv and
 * logs/b.csv (a glob), and a trained model for predict_naive_bayes, job
 * 00000000-0000-4000-8000-000000000001. The data root is also the spool.
 *
 * As the API does: the text is parsed with JSON_REJECT_DUPLICATES and must
 * be an object; plan_build builds it. When it builds, as the service
 * does: plan_describe (POST /v1/jobs/validate), plan_resolution, the spec
 * and resolution stored as compact JSON text and read back, and
 * plan_load in a worker. Properties: a failed build sets a code, a path
 * and a message; a built plan is loaded again from its stored resolution,
 * and the loaded plan describes itself exactly as the built one.
 *
 * FUZZ_SPEC_VERBOSE=1 in the environment prints, for each input, whether
 * it built or why not (to check that the seeds build).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "../../lib/fsys.h"

#define MODEL_JOB "00000000-0000-4000-8000-000000000001"

/* The inputs of the data root, once. */
static void
setup(void)
{
    static const char t_csv[] =
        "id,year,title,score,flag,text,odd name\n"
        "1,2010,Alpha,1.5,true,the cat sat,x\n"
        "2,2011,\"Beta, with comma\",2.25,false,\"a \"\"quoted\"\" dog\",\n"
        "3,,Gamma,,true,,y\n"
        "4,1999,delta,-0.5,false,cats and dogs,z\n";
    static const char u_csv[] = "id,label\n1,a\n2,b\n5,c\n";
    static const char t_jsonl[] =
        "{\"id\": 1, \"name\": \"a\", \"v\": 1.5, \"ok\": true}\n"
        "{\"id\": 2, \"name\": null, \"nested\": {\"x\": [1, 2]}}\n"
        "\n"
        "{\"id\": 3, \"name\": \"\\u00e9\\n\", \"v\": -2}\n";
    static const char t_txt[] = "first line\n\nthird, line\r\nlast";
    static const char a_csv[] = "k,v\nx,1\ny,2\n";
    static const char b_csv[] = "k,v\nz,3\n";

    fz_put("t.csv", t_csv, sizeof t_csv - 1);
    fz_put("u.csv", u_csv, sizeof u_csv - 1);
    fz_put("t.jsonl", t_jsonl, sizeof t_jsonl - 1);
    fz_put("t.txt", t_txt, sizeof t_txt - 1);
    fz_put_gzip("t.csv.gz", t_csv, sizeof t_csv - 1, 2);
    {
        char *dir = xasprintf("%s/logs", fz_root());

        if (fsys_mkdir_p(dir, 0755) != 0)
            fz_fail("cannot make %s", dir);
        free(dir);
        dir = xasprintf("%s/jobs/%s/artifacts", fz_root(), MODEL_JOB);
        if (fsys_mkdir_p(dir, 0755) != 0)
            fz_fail("cannot make %s", dir);
        free(dir);
    }
    fz_put("logs/a.csv", a_csv, sizeof a_csv - 1);
    fz_put("logs/b.csv", b_csv, sizeof b_csv - 1);
    fz_put("jobs/" MODEL_JOB "/artifacts/model", "", 0);
}

/* 'j' as compact JSON text read back, as the database stores it. */
static json_t *
stored(const json_t *j, const char *what)
{
    char        *text = json_dumps(j, JSON_COMPACT);
    json_error_t jerr;
    json_t      *back;

    if (text == NULL)
        fz_fail("the %s cannot be encoded as JSON", what);
    back = json_loads(text, 0, &jerr);
    if (back == NULL)
        fz_fail("the stored %s does not read back (%s): %s", what, jerr.text,
                text);
    free(text);
    return back;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int   ready, verbose;
    json_error_t jerr;
    json_t      *spec, *res = NULL, *spec2 = NULL, *res2 = NULL;
    json_t      *d1 = NULL, *d2 = NULL;
    plan_env     env = {fz_root(), NULL, NULL, 64u << 20, 0, NULL, NULL, NULL};
    plan        *p = NULL, *q = NULL;
    sh_err       err;
    int          rc;

    if (!ready) {
        setup();
        verbose = getenv("FUZZ_SPEC_VERBOSE") != NULL;
        ready = 1;
    }
    spec = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (spec == NULL || !json_is_object(spec))
        goto done;
    p = fz_build(spec, &err);
    if (verbose)
        fprintf(stderr, "spec: %s\n", p ? "built" : err.msg);
    if (p == NULL) {
        if (err.msg[0] == '\0')
            fz_fail("plan_build failed with code %d and no message", err.code);
        goto done;
    }
    d1 = plan_describe(p);
    res = plan_resolution(p);
    if (d1 == NULL || res == NULL)
        fz_fail("a built plan without a description or a resolution");
    spec2 = stored(spec, "spec");
    res2 = stored(res, "resolution");
    sh_err_clear(&err);
    rc = plan_load(spec2, res2, &env, &q, &err);
    if (rc != 0 || q == NULL)
        fz_fail("plan_load of a built plan failed (%d at '%s'): %s", rc,
                err.path, err.msg);
    d2 = plan_describe(q);
    if (!json_equal(d1, d2)) {
        char *a = json_dumps(d1, JSON_INDENT(1) | JSON_SORT_KEYS);
        char *b = json_dumps(d2, JSON_INDENT(1) | JSON_SORT_KEYS);

        fz_fail_diff("the loaded plan describes itself differently", "built", a,
                     "loaded", b);
    }

done:
    json_decref(d1);
    json_decref(d2);
    json_decref(res);
    json_decref(res2);
    json_decref(spec2);
    json_decref(spec);
    plan_free(p);
    plan_free(q);
    return 0;
}
