/*
 * test_main.c - the one registry of CUnit suites; runs them all.
 *
 * Each tests/unit/test_X.c defines test_X_register(), which adds its suite.
 * Exit status is non-zero when any test fails. With an argument, runs only
 * the suite of that name ("unit_tests faults").
 */
#include <CUnit/Basic.h>
#include <stdio.h>

#include "test_suites.h"

int
main(int argc, char **argv)
{
    unsigned  failed;
    CU_pSuite only = NULL;

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
    test_text_register();
    test_nb_register();
    test_exec_register();
    test_pathglob_register();
    test_faults_register();
    CU_basic_set_mode(CU_BRM_NORMAL);
    if (argc > 1 && (only = CU_get_suite(argv[1])) == NULL) {
        fprintf(stderr, "no suite named '%s'\n", argv[1]);
        CU_cleanup_registry();
        return 2;
    }
    if (only != NULL)
        CU_basic_run_suite(only);
    else
        CU_basic_run_tests();
    failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
