/* tests/unit/test_model_manifest.c: the C parameter manifests equal the names and shapes that
 * diffusers/transformers produce (tests/fixtures/manifest/ files from tests/reference/manifest.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/model_manifest.h"

/* "name d0,d1,..." for one parameter. */
static void s_line(const dq_param_t *p, char *buf, size_t len) {
    int n = snprintf(buf, len, "%s ", p->name);
    for (int d = 0; d < p->ndim; d++)
        n += snprintf(buf + n, len - (size_t) n, d ? ",%lld" : "%lld", (long long) p->shape[d]);
}

static int s_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void s_compare(const char *preset, const char *component) {
    dq_model_configs_t m;
    assert_int_equal(dq_model_preset(preset, &m), 0);
    dq_param_list_t list = {0};
    int rc = !strcmp(component, "clip")   ? dq_manifest_clip(&m.clip, &list)
             : !strcmp(component, "unet") ? dq_manifest_unet(&m.unet, &list)
                                          : dq_manifest_vae(&m.vae, &list);
    assert_int_equal(rc, 0);
    char **mine = calloc(list.count, sizeof *mine);
    for (size_t i = 0; i < list.count; i++) {
        char buf[256];
        s_line(&list.items[i], buf, sizeof buf);
        mine[i] = strdup(buf);
    }
    qsort(mine, list.count, sizeof *mine, s_cmp);

    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/manifest/%s-%s.txt", getenv("top_srcdir"),
             preset, component);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    char line[256];
    size_t i = 0, mismatches = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (i >= list.count) {
            print_error("%s: reference has extra %s\n", path, line);
            mismatches++;
        } else if (strcmp(line, mine[i])) {
            print_error("%s: line %zu: reference '%s', C '%s'\n", path, i + 1, line, mine[i]);
            mismatches++;
        }
        i++;
    }
    fclose(f);
    if (i != list.count)
        print_error("%s: reference has %zu parameters, C %zu\n", path, i, list.count);
    size_t count = list.count;
    for (size_t k = 0; k < count; k++)
        free(mine[k]);
    free(mine);
    dq_param_list_free(&list);
    assert_int_equal(mismatches, 0);
    assert_int_equal(i, count);
}

static void test_sd15_clip(void **state) {
    (void) state;
    s_compare("sd15", "clip");
}
static void test_sd15_unet(void **state) {
    (void) state;
    s_compare("sd15", "unet");
}
static void test_sd15_vae(void **state) {
    (void) state;
    s_compare("sd15", "vae");
}
static void test_tiny_clip(void **state) {
    (void) state;
    s_compare("tiny", "clip");
}
static void test_tiny_unet(void **state) {
    (void) state;
    s_compare("tiny", "unet");
}
static void test_tiny_vae(void **state) {
    (void) state;
    s_compare("tiny", "vae");
}

/* SD 1.5's well-known sizes: 123,060,480 (CLIP-L text), 859,520,964 (UNet), 83,653,863 (VAE). */
static void test_sd15_parameter_counts(void **state) {
    (void) state;
    dq_model_configs_t m;
    assert_int_equal(dq_model_preset("sd15", &m), 0);
    dq_param_list_t l = {0};
    assert_int_equal(dq_manifest_clip(&m.clip, &l), 0);
    assert_int_equal(dq_param_list_numel(&l), 123060480);
    dq_param_list_free(&l);
    assert_int_equal(dq_manifest_unet(&m.unet, &l), 0);
    assert_int_equal(dq_param_list_numel(&l), 859520964);
    dq_param_list_free(&l);
    assert_int_equal(dq_manifest_vae(&m.vae, &l), 0);
    assert_int_equal(dq_param_list_numel(&l), 83653863);
    dq_param_list_free(&l);
    assert_int_equal(dq_model_preset("nope", &m), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sd15_clip),
        cmocka_unit_test(test_sd15_unet),
        cmocka_unit_test(test_sd15_vae),
        cmocka_unit_test(test_tiny_clip),
        cmocka_unit_test(test_tiny_unet),
        cmocka_unit_test(test_tiny_vae),
        cmocka_unit_test(test_sd15_parameter_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
