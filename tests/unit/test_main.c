/*
 * test_main.c - the one registry of CUnit suites; runs them all.
 *
 * Each tests/unit/test_X.c defines test_X_register(), which adds its suite.
 * With arguments, runs only the suites named ("unit_tests api service").
 * Exit status is non-zero when any test fails or a named suite is unknown.
 */
#include <CUnit/Basic.h>
#include <stdio.h>

#include "test_suites.h"

int
main(int argc, char **argv)
{
    unsigned failed, unknown = 0;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    test_s3_register();
    test_util_register();
    test_csv_register();
    test_input_register();
    test_value_register();
    test_expr_register();
    test_plan_register();
    test_rowfile_register();
    test_sort_register();
    test_agg_register();
    test_agg_quant_register();
    test_text_register();
    test_nb_register();
    test_exec_register();
    test_pathglob_register();
    test_faults_register();
    test_parquet_register();
    test_api_register();
    test_service_register();
    test_vocab_register();
    test_csv_par_register();
    CU_basic_set_mode(CU_BRM_NORMAL);
    if (argc < 2)
        CU_basic_run_tests();
    for (int i = 1; i < argc; i++) {
        CU_pSuite s = CU_get_suite(argv[i]);

        if (s == NULL) {
            fprintf(stderr, "unit_tests: no suite '%s'\n", argv[i]);
            unknown++;
        } else {
            CU_basic_run_suite(s);
        }
    }
    failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed()
             + unknown;
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
