/* tests/unit/test_weights.c: a model part's weights become backend tensors with the same values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/backend_cpu.h"
#include "kernels/weights.h"

static char s_path[4096];

static const char *s_src(const char *rel) {
    const char *top = getenv("top_srcdir");
    snprintf(s_path, sizeof s_path, "%s/%s", top ? top : ".", rel);
    return s_path;
}

/* Every tensor of every part equals the file's values converted to the stored dtype. */
static void s_check_part(dq_backend_t *be, dq_model_t *model, dq_model_part_t part, dq_dtype_t mt) {
    char err[512] = "";
    dq_weights_t *w = dq_weights_new(be, model, part, mt, err, sizeof err);
    assert_non_null(w);
    const dq_model_component_t *comp = &model->parts[part];
    size_t bytes = 0;
    for (size_t i = 0; i < comp->count; i++) {
        const dq_weight_t *src = &comp->weights[i];
        const dq_tensor_t *t = dq_weights_get(w, src->name);
        assert_non_null(t);
        assert_int_equal(t->ndim, src->ndim);
        for (int d = 0; d < src->ndim; d++) assert_int_equal(t->shape[d], src->shape[d]);
        size_t n = (size_t) dq_tensor_nelements(t);
        float *want = malloc(n * sizeof(float));
        assert_int_equal(dq_convert_to_f32(want, src->data, src->dtype, n), 0);
        float *got = malloc(n * sizeof(float));
        if (src->ndim == 1) assert_int_equal(t->dtype, DQ_DTYPE_F32);
        assert_int_equal(dq_convert_to_f32(got, t->data, t->dtype, n), 0);
        for (size_t k = 0; k < n; k++) {
            /* Values in the fixture are f16, so F32/F16 storage is exact; BF16 rounds. */
            float tol = t->dtype == DQ_DTYPE_BF16 ? 0.0079f * (want[k] < 0 ? -want[k] : want[k]) : 0;
            float diff = got[k] - want[k];
            assert_true(diff <= tol && -diff <= tol);
        }
        bytes += n * dq_dtype_size(t->dtype);
        free(want);
        free(got);
    }
    assert_true(dq_weights_bytes(w) >= bytes);
    assert_null(dq_weights_get(w, "no.such.weight"));
    assert_null(dq_weights_getf(w, "down_blocks.%d.nothing", 7));
    dq_weights_destroy(&w);
    assert_null(w);
}

static void test_tiny_model_parts(void **state) {
    (void) state;
    char err[512] = "";
    dq_model_t *model = dq_model_load(s_src("tests/fixtures/tiny-sd"), err, sizeof err);
    if (!model) fail_msg("load: %s", err);
    dq_backend_t *be = dq_backend_cpu_new(1 << 20, 1);
    assert_non_null(be);
    for (int part = 0; part < DQ_PART_COUNT; part++) {
        s_check_part(be, model, (dq_model_part_t) part, DQ_DTYPE_F32);
        s_check_part(be, model, (dq_model_part_t) part, DQ_DTYPE_F16);
    }
    s_check_part(be, model, DQ_PART_VAE, DQ_DTYPE_BF16);
    /* The tensors outlive the model they were made from. */
    dq_weights_t *w = dq_weights_new(be, model, DQ_PART_UNET, DQ_DTYPE_F32, err, sizeof err);
    assert_non_null(w);
    dq_model_destroy(&model);
    const dq_tensor_t *t = dq_weights_get(w, "conv_in.weight");
    assert_non_null(t);
    assert_int_equal(t->ndim, 4);
    dq_weights_destroy(&w);
    dq_backend_destroy(&be);
}

static void test_rejects_other_dtypes(void **state) {
    (void) state;
    char err[512] = "";
    dq_model_t *model = dq_model_load(s_src("tests/fixtures/tiny-sd"), err, sizeof err);
    assert_non_null(model);
    dq_backend_t *be = dq_backend_cpu_new(1 << 20, 1);
    assert_null(dq_weights_new(be, model, DQ_PART_VAE, DQ_DTYPE_I32, err, sizeof err));
    assert_non_null(strstr(err, "F32, F16 or BF16"));
    dq_backend_destroy(&be);
    dq_model_destroy(&model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_model_parts),
        cmocka_unit_test(test_rejects_other_dtypes),
    };
    return cmocka_run_group_tests_name("weights", tests, NULL, NULL);
}
