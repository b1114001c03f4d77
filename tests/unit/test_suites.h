/*
 * test_suites.h - the registration function of every unit-test suite.
 */
#ifndef SHEAF_TEST_SUITES_H
#define SHEAF_TEST_SUITES_H

void test_s3_register(void);
void test_util_register(void);
void test_csv_register(void);
void test_input_register(void);
void test_value_register(void);
void test_expr_register(void);
void test_plan_register(void);
void test_rowfile_register(void);
void test_sort_register(void);
void test_agg_register(void);
void test_agg_quant_register(void);
void test_text_register(void);
void test_nb_register(void);
void test_exec_register(void);
void test_pathglob_register(void);
void test_faults_register(void);
void test_parquet_register(void);
void test_api_register(void);
void test_service_register(void);
void test_vocab_register(void);
void test_csv_par_register(void);

#endif
