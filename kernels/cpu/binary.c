/* kernels/cpu/binary.c: add and mul with numpy broadcasting of b, and scalar scale. */
#include "kernels/cpu/cpu_internal.h"

typedef enum { S_ADD, S_MUL } s_binop_t;

static int s_binary(const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y, s_binop_t op) {
    // a, y: [A0, A1, A2, A3] (right-aligned to 4 dims); b: broadcastable to a
    int64_t as[4], bst[4];
    int off_a = 4 - a->ndim, off_b = 4 - b->ndim;
    for (int i = 0; i < 4; i++) as[i] = i < off_a ? 1 : a->shape[i - off_a];
    /* Element strides of b in a's index space: 0 where b is broadcast. */
    int64_t step = 1;
    for (int i = 3; i >= 0; i--) {
        int64_t bs = i < off_b ? 1 : b->shape[i - off_b];
        bst[i] = bs == 1 ? 0 : step;
        step *= bs;
    }
    const float *ad = a->data, *bd = b->data;
    float *yd = y->data;
    int64_t outer = as[0] * as[1] * as[2], inner = as[3];
#pragma omp parallel for if (outer * inner >= DQ_CPU_PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        int64_t i2 = o % as[2], i1 = (o / as[2]) % as[1], i0 = o / (as[2] * as[1]);
        const float *ar = ad + o * inner;
        const float *br = bd + i0 * bst[0] + i1 * bst[1] + i2 * bst[2];
        float *yr = yd + o * inner;
        int64_t bs3 = bst[3];
        if (op == S_ADD)
            for (int64_t j = 0; j < inner; j++) yr[j] = ar[j] + br[j * bs3];
        else
            for (int64_t j = 0; j < inner; j++) yr[j] = ar[j] * br[j * bs3];
    }
    return 0;
}

int dq_cpu_add(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y) {
    (void) be;
    return s_binary(a, b, y, S_ADD);
}

int dq_cpu_mul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y) {
    (void) be;
    return s_binary(a, b, y, S_MUL);
}

int dq_cpu_scale(dq_backend_t *be, const dq_tensor_t *x, float s, float b, dq_tensor_t *y) {
    (void) be;
    int64_t n = dq_tensor_nelements(x);
    const float *xd = x->data;
    float *yd = y->data;
#pragma omp parallel for if (n >= DQ_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) yd[i] = xd[i] * s + b;
    return 0;
}
