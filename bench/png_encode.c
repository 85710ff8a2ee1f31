/* bench/png_encode.c: how long diffq's PNG writer (common/png_out.c) takes per image, beside
 * libpng with its defaults (zlib level 6, adaptive filters: what most writers, PIL included,
 * use), on the same pixels. Not a test: `make bench/png_encode`, then
 *   bench/png_encode [SIDE [RGB_FILE]]
 * SIDE (default 512) is the image's width and height; RGB_FILE holds SIDE*SIDE*3 bytes of RGB8
 * (for instance a photo, so the sizes mean something); without it a smooth pattern with mild
 * noise stands in. Prints microseconds per image and bytes for both. */
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/png_out.h"

typedef struct {
    uint8_t *bytes;
    size_t n, cap;
} sink_t;

static void s_write(png_structp png, png_bytep data, png_size_t n) {
    sink_t *s = png_get_io_ptr(png);
    if (s->n + n > s->cap) {
        size_t cap = (s->n + n) * 2;
        uint8_t *b = realloc(s->bytes, cap);
        if (!b) png_error(png, "out of memory");
        s->bytes = b;
        s->cap = cap;
    }
    memcpy(s->bytes + s->n, data, n);
    s->n += n;
}

static void s_flush(png_structp png) {
    (void) png;
}

/* libpng with every setting left at its default. Returns the PNG's size, 0 on failure. */
static size_t s_encode_default(const uint8_t *rgb, int side) {
    sink_t sink = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(sink.bytes);
        return 0;
    }
    png_set_write_fn(png, &sink, s_write, s_flush);
    png_set_IHDR(png, info, (png_uint_32) side, (png_uint_32) side, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < side; y++)
        png_write_row(png, (png_bytep) (uintptr_t) (rgb + (size_t) y * (size_t) side * 3));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(sink.bytes);
    return sink.n;
}

static size_t s_encode_diffq(const uint8_t *rgb, int side) {
    uint8_t *out = NULL;
    size_t n = 0;
    char err[256];
    if (dq_png_encode(rgb, side, side, NULL, 0, &out, &n, err, sizeof err) != 0) {
        fprintf(stderr, "png_encode: %s\n", err);
        return 0;
    }
    free(out);
    return n;
}

static double s_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

/* Best of 3 runs of `reps` encodes, in microseconds per image. */
static double s_time(size_t (*encode)(const uint8_t *, int), const uint8_t *rgb, int side,
                     int reps, size_t *size) {
    double best = 1e30;
    for (int run = 0; run < 3; run++) {
        double t0 = s_now();
        for (int r = 0; r < reps; r++)
            *size = encode(rgb, side);
        double us = (s_now() - t0) / reps * 1e6;
        if (us < best) best = us;
    }
    return best;
}

int main(int argc, char **argv) {
    int side = argc > 1 ? atoi(argv[1]) : 512;
    if (side < 1 || side > 4096) {
        fprintf(stderr, "usage: png_encode [SIDE 1..4096 [RGB_FILE]]\n");
        return 2;
    }
    size_t bytes = (size_t) side * (size_t) side * 3;
    uint8_t *rgb = malloc(bytes);
    if (!rgb) return 1;
    if (argc > 2) {
        FILE *f = fopen(argv[2], "rb");
        size_t got = f ? fread(rgb, 1, bytes, f) : 0;
        if (f) fclose(f);
        if (got != bytes) {
            fprintf(stderr, "png_encode: %s: expected %zu bytes of RGB8\n", argv[2], bytes);
            free(rgb);
            return 2;
        }
    } else {
        uint32_t state = 12345;
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++) {
                state = state * 1664525u + 1013904223u;
                int noise = (int) (state >> 28);
                uint8_t *p = rgb + ((size_t) y * (size_t) side + (size_t) x) * 3;
                p[0] = (uint8_t) ((x * 255) / side + noise);
                p[1] = (uint8_t) ((y * 255) / side + noise);
                p[2] = (uint8_t) (((x ^ y) & 0xff) / 4 + noise);
            }
    }
    int reps = side >= 256 ? 10 : 1000;
    size_t n_default = 0, n_diffq = 0;
    double t_default = s_time(s_encode_default, rgb, side, reps, &n_default);
    double t_diffq = s_time(s_encode_diffq, rgb, side, reps, &n_diffq);
    printf("image: %dx%d %s\n", side, side, argc > 2 ? argv[2] : "(synthetic)");
    printf("libpng defaults (zlib 6): %10.1f us %9zu bytes\n", t_default, n_default);
    printf("diffq png_out:            %10.1f us %9zu bytes\n", t_diffq, n_diffq);
    printf("speed-up %.2fx, size %+.1f%%\n", t_default / t_diffq,
           100.0 * ((double) n_diffq - (double) n_default) / (double) n_default);
    free(rgb);
    return n_default && n_diffq ? 0 : 1;
}
