/* tests/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors header parser. Any input must
 * give either a valid file whose tensors all lie inside the buffer, or a clean error message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    err[0] = '\0';
    dq_safetensors_t *st = dq_safetensors_from_memory(data, size, "fuzz", err, sizeof err);
    if (!st) {
        if (!err[0]) abort(); /* every failure must say why */
        return 0;
    }
    /* Touch every byte of every tensor so ASan catches a pointer outside the buffer. */
    unsigned sum = 0;
    for (size_t i = 0; i < dq_safetensors_count(st); i++) {
        const dq_st_tensor_t *t = dq_safetensors_at(st, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) abort();
        for (size_t j = 0; j < t->nbytes; j++)
            sum += p[j];
        if (dq_safetensors_find(st, t->name) != t) abort();
    }
    (void) dq_safetensors_metadata(st, "format");
    dq_safetensors_destroy(&st);
    return (int) (sum & 0);
}
