/* tests/integration/png_pixels.c: "png_pixels A.png B.png" exits 0 when both PNGs have the same
 * size and the same RGB pixels (text chunks may differ), 1 when they differ, 2 on a read error. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads path as 8-bit RGB into *rgb (malloc'd). Returns 0, or -1 after printing why. */
static int s_read(const char *path, png_uint_32 *w, png_uint_32 *h, unsigned char **rgb) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        fprintf(stderr, "%s: %s\n", path, img.message);
        return -1;
    }
    img.format = PNG_FORMAT_RGB;
    *rgb = malloc(PNG_IMAGE_SIZE(img));
    if (!*rgb || !png_image_finish_read(&img, NULL, *rgb, 0, NULL)) {
        fprintf(stderr, "%s: %s\n", path, *rgb ? img.message : "out of memory");
        png_image_free(&img);
        return -1;
    }
    *w = img.width;
    *h = img.height;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: png_pixels A.png B.png\n");
        return 2;
    }
    png_uint_32 wa, ha, wb, hb;
    unsigned char *a = NULL, *b = NULL;
    if (s_read(argv[1], &wa, &ha, &a) < 0 || s_read(argv[2], &wb, &hb, &b) < 0) return 2;
    int same = wa == wb && ha == hb && memcmp(a, b, (size_t) wa * ha * 3) == 0;
    if (!same) fprintf(stderr, "%s and %s differ\n", argv[1], argv[2]);
    free(a);
    free(b);
    return same ? 0 : 1;
}
