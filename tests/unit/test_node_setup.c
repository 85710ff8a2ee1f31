/* tests/unit/test_node_setup.c: diffq-node's models (--model, --models), ranks (--gpus,
 * --cpu-ranks) and batch size (--max-batch) from its options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/setup.h"

static char s_err[512];

static void test_model_names(void **state) {
    (void) state;
    dq_node_params_t p;
    memset(&p, 0, sizeof p);
    assert_int_equal(dq_setup_model(&p, "sd15", s_err, sizeof s_err), 0);
    assert_int_equal(dq_setup_model(&p, "/m/tiny.safetensors", s_err, sizeof s_err), 0);
    assert_int_equal(dq_setup_model(&p, "/m/v1-5.ckpt", s_err, sizeof s_err), 0);
    assert_int_equal(p.n_models, 3);
    assert_string_equal(p.models[0].name, "sd15");
    assert_string_equal(p.models[0].spec, "sd15");
    assert_string_equal(p.models[1].name, "tiny");
    assert_string_equal(p.models[1].spec, "/m/tiny.safetensors");
    assert_string_equal(p.models[2].name, "v1-5");
    assert_int_equal(dq_setup_model(&p, "/other/tiny.ckpt", s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "given twice"));
    assert_int_equal(dq_setup_model(&p, "/m/.safetensors", s_err, sizeof s_err), -1);
    assert_int_equal(dq_setup_model(&p, "/m/", s_err, sizeof s_err), -1);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(dq_setup_model(&p, longname, s_err, sizeof s_err), -1);
    assert_int_equal(p.n_models, 3);
}

static void test_model_limit(void **state) {
    (void) state;
    dq_node_params_t p;
    memset(&p, 0, sizeof p);
    char name[16];
    for (int i = 0; i < DQ_PROTO_MAX_MODELS; i++) {
        snprintf(name, sizeof name, "m%d", i);
        assert_int_equal(dq_setup_model(&p, name, s_err, sizeof s_err), 0);
    }
    assert_int_equal(dq_setup_model(&p, "one-more", s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "more than"));
}

static void test_models_dir(void **state) {
    (void) state;
    char dir[] = "/tmp/dq-test-models-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    const char *entries[] = {"b.safetensors", "a", ".hidden"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, entries[i]);
        if (i == 1)
            assert_int_equal(mkdir(path, 0700), 0);
        else
            fclose(fopen(path, "w"));
    }
    dq_node_params_t p;
    memset(&p, 0, sizeof p);
    assert_int_equal(dq_setup_models_dir(&p, dir, s_err, sizeof s_err), 0);
    assert_int_equal(p.n_models, 2);
    assert_string_equal(p.models[0].name, "a");
    assert_string_equal(p.models[1].name, "b");
    snprintf(path, sizeof path, "%s/b.safetensors", dir);
    assert_string_equal(p.models[1].spec, path);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, entries[i]);
        remove(path);
    }
    memset(&p, 0, sizeof p);
    assert_int_equal(dq_setup_models_dir(&p, dir, s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "no models"));
    rmdir(dir);
    assert_int_equal(dq_setup_models_dir(&p, dir, s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "No such file"));
}

static void test_cpu_ranks(void **state) {
    (void) state;
    dq_node_params_t p;
    memset(&p, 0, sizeof p);
    char(*devs)[64] = NULL;
    assert_int_equal(dq_setup_ranks(&p, NULL, 3, &devs, s_err, sizeof s_err), 0);
    assert_int_equal(p.n_ranks, 3);
    assert_int_equal(p.n_devices, 1);
    assert_string_equal(p.devices[0].name, "cpu");
    assert_true(p.devices[0].memory > 0);
    assert_string_equal(p.rank_devices[2], "cpu");
    free(devs);
    assert_int_equal(dq_setup_ranks(&p, "all", 2, &devs, s_err, sizeof s_err), DQ_NODE_EXIT_USAGE);
    assert_int_equal(dq_setup_ranks(&p, NULL, -1, &devs, s_err, sizeof s_err), DQ_NODE_EXIT_USAGE);
    assert_int_equal(dq_setup_ranks(&p, NULL, DQ_PROTO_MAX_RANKS + 1, &devs, s_err, sizeof s_err),
                     DQ_NODE_EXIT_USAGE);
    assert_null(devs);
}

static void test_gpus_that_do_not_exist(void **state) {
    (void) state;
    dq_node_params_t p;
    memset(&p, 0, sizeof p);
    char(*devs)[64] = NULL;
    /* No build and no machine has 100 GPUs: a device error, whether CUDA is built or not. */
    assert_int_equal(dq_setup_ranks(&p, "99", 0, &devs, s_err, sizeof s_err), DQ_NODE_EXIT_DEVICE);
    assert_true(strstr(s_err, "not built") || strstr(s_err, "no CUDA device") ||
                strstr(s_err, "does not exist"));
    free(devs);
}

static void test_max_batch(void **state) {
    (void) state;
    dq_node_params_t p;
    memset(&p, 0, sizeof p);
    char devices[2][64] = {"cuda:0", "cuda:1"};
    p.rank_devices = devices;
    p.n_ranks = 2;
    p.backend = "engine";
    assert_int_equal(dq_setup_max_batch(&p, false, 0, s_err, sizeof s_err), 0);
    assert_int_equal(p.max_batch, DQ_SETUP_MAX_BATCH_GPU);
    p.backend = "null"; /* simulated: the CPU default, so tests keep their shard shapes */
    assert_int_equal(dq_setup_max_batch(&p, false, 0, s_err, sizeof s_err), 0);
    assert_int_equal(p.max_batch, DQ_SETUP_MAX_BATCH_CPU);
    snprintf(devices[0], sizeof devices[0], "cpu");
    p.backend = "engine";
    assert_int_equal(dq_setup_max_batch(&p, false, 0, s_err, sizeof s_err), 0);
    assert_int_equal(p.max_batch, DQ_SETUP_MAX_BATCH_CPU);
    assert_int_equal(dq_setup_max_batch(&p, true, 12, s_err, sizeof s_err), 0);
    assert_int_equal(p.max_batch, 12);
    assert_int_equal(dq_setup_max_batch(&p, true, 1024, s_err, sizeof s_err), 0);
    assert_int_equal(dq_setup_max_batch(&p, true, 0, s_err, sizeof s_err), DQ_NODE_EXIT_USAGE);
    assert_non_null(strstr(s_err, "--max-batch 0: expected 1..1024"));
    assert_int_equal(dq_setup_max_batch(&p, true, 1025, s_err, sizeof s_err), DQ_NODE_EXIT_USAGE);
    assert_int_equal(p.max_batch, 1024); /* unchanged by a refused value */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_names),
        cmocka_unit_test(test_model_limit),
        cmocka_unit_test(test_models_dir),
        cmocka_unit_test(test_cpu_ranks),
        cmocka_unit_test(test_gpus_that_do_not_exist),
        cmocka_unit_test(test_max_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
