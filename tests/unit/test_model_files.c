/* tests/unit/test_model_files.c: model init -> load round trip, LDM key mapping against diffusers'
 * converters (fixtures from tests/reference/ldm_names.py), single-file vs folder tensors, and the
 * errors for missing, misshapen and unexpected tensors and bad paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/model_files.h"
#include "kernels/model_init.h"
#include "kernels/model_ldm.h"
#include "kernels/tokenizer.h"

#define SEED 42

static char s_err[1024];
static char s_dir[256]; /* a tiny model written once for the whole file */

static const char *s_src(const char *rel) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", getenv("top_srcdir"), rel);
    return buf[k];
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void) st, (void) flag, (void) ftw;
    return remove(path);
}

/* Copies the tiny model folder to a fresh directory (weights are symlinked where not replaced). */
static char *s_copy_model(void) {
    static char dir[256];
    snprintf(dir, sizeof dir, "/tmp/dq-test-modelcopy-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r '%s'/. '%s'/", s_dir, dir);
    assert_int_equal(system(cmd), 0);
    return dir;
}

/* A rewrite rule for s_rewrite: returns 0 to drop the tensor, 1 to keep it (name/shape may change).
 */
typedef int (*s_rule_fn)(dq_st_tensor_t *t, char *name_buf);

/* Rewrites the safetensors file at path through `rule`, optionally appending `extra`. */
static void s_rewrite(const char *path, s_rule_fn rule, const dq_st_tensor_t *extra,
                      size_t n_extra) {
    dq_safetensors_t *st = dq_safetensors_open(path, s_err, sizeof s_err);
    if (!st) fail_msg("%s", s_err);
    size_t n = dq_safetensors_count(st), k = 0;
    dq_st_tensor_t *ts = calloc(n + n_extra, sizeof *ts);
    char(*names)[256] = calloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        ts[k] = *dq_safetensors_at(st, i);
        snprintf(names[k], sizeof names[k], "%s", ts[k].name);
        if (rule(&ts[k], names[k])) {
            ts[k].name = names[k];
            k++;
        }
    }
    for (size_t i = 0; i < n_extra; i++)
        ts[k++] = extra[i];
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    if (dq_safetensors_write(tmp, ts, k, NULL, 0, s_err, sizeof s_err) < 0) fail_msg("%s", s_err);
    assert_int_equal(rename(tmp, path), 0);
    free(names);
    free(ts);
    dq_safetensors_destroy(&st);
}

static int s_group_setup(void **state) {
    (void) state;
    snprintf(s_dir, sizeof s_dir, "/tmp/dq-test-model-XXXXXX");
    if (!mkdtemp(s_dir)) return -1;
    dq_model_configs_t cfg;
    if (dq_model_preset("tiny", &cfg) < 0) return -1;
    if (dq_model_init_random(s_dir, &cfg, SEED, DQ_DTYPE_F32,
                             s_src("data/clip/bpe_simple_vocab_16e6.txt.gz"), s_err,
                             sizeof s_err) < 0) {
        fprintf(stderr, "%s\n", s_err);
        return -1;
    }
    return 0;
}

static int s_group_teardown(void **state) {
    (void) state;
    return nftw(s_dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_init_then_load(void **state) {
    (void) state;
    dq_model_t *m = dq_model_load(s_dir, s_err, sizeof s_err);
    if (!m) fail_msg("%s", s_err);
    assert_int_equal(m->layout, DQ_MODEL_DIFFUSERS);
    assert_int_equal(m->parts[DQ_PART_TEXT_ENCODER].count, 36);
    assert_int_equal(m->parts[DQ_PART_UNET].count, 208);
    assert_int_equal(m->parts[DQ_PART_VAE].count, 180);
    assert_int_equal(m->parts[DQ_PART_UNET].n_params, 792964);
    assert_int_equal(m->parts[DQ_PART_UNET].n_extra, 0);
    assert_int_equal(m->cfg.clip.hidden_size, 32);
    assert_int_equal(m->cfg.clip.num_attention_heads, 4);
    assert_int_equal(m->cfg.unet.n_blocks, 2);
    assert_int_equal(m->cfg.unet.block_out_channels[1], 64);
    assert_string_equal(m->cfg.unet.up_block_types[1], "CrossAttnUpBlock2D");
    assert_int_equal(m->cfg.vae.block_out_channels[3], 64);
    assert_string_equal(m->cfg.scheduler.class_name, "PNDMScheduler");
    assert_true(m->cfg.scheduler.sched.skip_prk_steps);
    assert_int_equal(m->cfg.scheduler.sched.steps_offset, 1);
    assert_non_null(strstr(m->vocab_path, "tokenizer/vocab.json"));
    /* Values follow the documented generator: N(0, 0.02) from seed ^ FNV(name); norms are 1, biases
     * 0. */
    const dq_weight_t *w = dq_model_weight(m, DQ_PART_UNET, "conv_in.weight");
    assert_non_null(w);
    assert_int_equal(w->dtype, DQ_DTYPE_F32);
    float got[2];
    memcpy(got, w->data, sizeof got);
    dq_init_rng_t rng;
    dq_init_rng_seed(&rng, SEED, "conv_in.weight");
    assert_true(got[0] == (float) (DQ_INIT_STD * dq_init_rng_normal(&rng)));
    assert_true(got[1] == (float) (DQ_INIT_STD * dq_init_rng_normal(&rng)));
    w = dq_model_weight(m, DQ_PART_VAE, "decoder.mid_block.attentions.0.group_norm.weight");
    memcpy(got, w->data, sizeof got);
    assert_true(got[0] == 1.0f && got[1] == 1.0f);
    w = dq_model_weight(m, DQ_PART_TEXT_ENCODER, "text_model.final_layer_norm.bias");
    memcpy(got, w->data, sizeof got);
    assert_true(got[0] == 0.0f);
    assert_null(dq_model_weight(m, DQ_PART_UNET, "nope"));
    dq_model_destroy(&m);
    assert_null(m);
}

static int s_drop_conv2(dq_st_tensor_t *t, char *name) {
    (void) t;
    return strcmp(name, "mid_block.resnets.1.conv2.weight") != 0;
}

static void test_missing_tensor_is_named(void **state) {
    (void) state;
    char *dir = s_copy_model();
    char path[512];
    snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.safetensors", dir);
    s_rewrite(path, s_drop_conv2, NULL, 0);
    assert_null(dq_model_load(dir, s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "missing tensor 'mid_block.resnets.1.conv2.weight'"));
    assert_non_null(strstr(s_err, path));
    nftw(dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static int s_reshape_bias(dq_st_tensor_t *t, char *name) {
    if (!strcmp(name, "conv_in.bias")) { /* [32] -> [16, 2]: same bytes, wrong shape */
        t->ndim = 2;
        t->shape[0] = 16;
        t->shape[1] = 2;
    }
    return 1;
}

static void test_wrong_shape_is_named(void **state) {
    (void) state;
    char *dir = s_copy_model();
    char path[512];
    snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.safetensors", dir);
    s_rewrite(path, s_reshape_bias, NULL, 0);
    assert_null(dq_model_load(dir, s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "tensor 'conv_in.bias' has shape [16, 2], expected [32]"));
    nftw(dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* transformers 5 writes CLIP without the "text_model." level. */
static int s_unprefix(dq_st_tensor_t *t, char *name) {
    (void) t;
    if (!strncmp(name, "text_model.", 11)) memmove(name, name + 11, strlen(name + 11) + 1);
    return 1;
}

static void test_extras_and_unprefixed_clip(void **state) {
    (void) state;
    char *dir = s_copy_model();
    char path[512];
    snprintf(path, sizeof path, "%s/text_encoder/model.safetensors", dir);
    int64_t ids[77];
    for (int i = 0; i < 77; i++)
        ids[i] = i;
    float junk[3] = {1, 2, 3};
    dq_st_tensor_t extra[2] = {
        {.name = "embeddings.position_ids",
         .dtype = DQ_DTYPE_I64,
         .ndim = 2,
         .shape = {1, 77},
         .data = ids},
        {.name = "misnamed.layer_norm.weight",
         .dtype = DQ_DTYPE_F32,
         .ndim = 1,
         .shape = {3},
         .data = junk},
    };
    s_rewrite(path, s_unprefix, extra, 2);
    dq_model_t *m = dq_model_load(dir, s_err, sizeof s_err);
    if (!m) fail_msg("%s", s_err);
    assert_int_equal(m->parts[DQ_PART_TEXT_ENCODER].count, 36);
    assert_int_equal(m->parts[DQ_PART_TEXT_ENCODER].n_extra,
                     1); /* position_ids is an expected buffer */
    assert_non_null(
        dq_model_weight(m, DQ_PART_TEXT_ENCODER, "text_model.encoder.layers.1.mlp.fc2.weight"));
    dq_model_destroy(&m);
    nftw(dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* One line of <preset>-ldm.txt. */
typedef struct {
    char ldm[160], part[16], diffusers[128];
} s_ldm_line_t;

static s_ldm_line_t *s_read_ldm(const char *preset, size_t *n) {
    char rel[128];
    snprintf(rel, sizeof rel, "tests/fixtures/manifest/%s-ldm.txt", preset);
    FILE *f = fopen(s_src(rel), "r");
    if (!f) fail_msg("cannot open %s", s_src(rel));
    s_ldm_line_t *lines = calloc(2000, sizeof *lines);
    *n = 0;
    while (*n < 2000 &&
           fscanf(f, "%159s %15s %127s", lines[*n].ldm, lines[*n].part, lines[*n].diffusers) == 3)
        (*n)++;
    fclose(f);
    return lines;
}

static void s_check_mapping(const char *preset) {
    size_t n;
    s_ldm_line_t *lines = s_read_ldm(preset, &n);
    assert_true(n > 400);
    /* A header-only checkpoint with every key (empty tensors): the mapping only reads names. */
    size_t cap = n * 256 + 64, len = 0;
    char *hdr = malloc(cap);
    len += (size_t) snprintf(hdr + len, cap - len, "{");
    for (size_t i = 0; i < n; i++)
        len +=
            (size_t) snprintf(hdr + len, cap - len,
                              "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                              i ? "," : "", lines[i].ldm);
    len += (size_t) snprintf(hdr + len, cap - len, "}");
    uint8_t *buf = malloc(len + 8);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t) ((uint64_t) len >> (8 * i));
    memcpy(buf + 8, hdr, len);
    dq_safetensors_t *st = dq_safetensors_from_memory(buf, len + 8, preset, s_err, sizeof s_err);
    if (!st) fail_msg("%s", s_err);
    assert_true(dq_ldm_is_checkpoint(st));
    dq_ldm_layout_t lay;
    assert_int_equal(dq_ldm_layout_scan(st, &lay, s_err, sizeof s_err), 0);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        char out[256];
        bool squeeze;
        int part = dq_ldm_map_key(&lay, lines[i].ldm, out, sizeof out, &squeeze);
        if (part < 0 || strcmp(dq_model_part_name((dq_model_part_t) part), lines[i].part) ||
            strcmp(out, lines[i].diffusers)) {
            print_error("%s: %s -> %s %s, expected %s %s\n", preset, lines[i].ldm,
                        part < 0 ? "-" : dq_model_part_name((dq_model_part_t) part),
                        part < 0 ? "-" : out, lines[i].part, lines[i].diffusers);
            bad++;
        }
        bool want_squeeze = strstr(lines[i].ldm, "mid.attn_1.") &&
                            strstr(lines[i].ldm, ".weight") && !strstr(lines[i].ldm, ".norm.");
        if (part >= 0 && squeeze != want_squeeze) {
            print_error("%s: squeeze flag wrong for %s\n", preset, lines[i].ldm);
            bad++;
        }
    }
    bool squeeze;
    char out[256];
    assert_int_equal(dq_ldm_map_key(&lay, "model_ema.decay", out, sizeof out, &squeeze), -1);
    assert_int_equal(dq_ldm_map_key(&lay, "model.diffusion_model.input_blocks.99999.0.x", out,
                                    sizeof out, &squeeze),
                     -1);
    assert_int_equal(bad, 0);
    dq_safetensors_destroy(&st);
    free(buf);
    free(hdr);
    free(lines);
}

static void test_ldm_mapping_tiny(void **state) {
    (void) state;
    s_check_mapping("tiny");
}
static void test_ldm_mapping_sd15(void **state) {
    (void) state;
    s_check_mapping("sd15");
}

/* Builds an LDM single-file checkpoint of the tiny folder (names from the diffusers-checked
 * fixture, VAE attention weights as 1x1 convs, plus training leftovers) and checks it loads to the
 * same tensors. */
static void test_single_file_matches_folder(void **state) {
    (void) state;
    size_t n;
    s_ldm_line_t *lines = s_read_ldm("tiny", &n);
    dq_model_t *folder = dq_model_load(s_dir, s_err, sizeof s_err);
    if (!folder) fail_msg("%s", s_err);
    dq_st_tensor_t *ts = calloc(n + 2, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        dq_model_part_t part = !strcmp(lines[i].part, "unet")  ? DQ_PART_UNET
                               : !strcmp(lines[i].part, "vae") ? DQ_PART_VAE
                                                               : DQ_PART_TEXT_ENCODER;
        const dq_weight_t *w = dq_model_weight(folder, part, lines[i].diffusers);
        if (!w) fail_msg("no %s in the folder", lines[i].diffusers);
        ts[i] = (dq_st_tensor_t){.name = lines[i].ldm,
                                 .dtype = w->dtype,
                                 .ndim = w->ndim,
                                 .data = w->data,
                                 .nbytes = w->nbytes};
        memcpy(ts[i].shape, w->shape, sizeof w->shape);
        if (strstr(lines[i].ldm, "mid.attn_1.") && w->ndim == 2)
            ts[i].ndim = 4, ts[i].shape[2] = ts[i].shape[3] = 1;
    }
    float alphas[4] = {1, 0.9f, 0.8f, 0.7f};
    ts[n] = (dq_st_tensor_t){
        .name = "alphas_cumprod", .dtype = DQ_DTYPE_F32, .ndim = 1, .shape = {4}, .data = alphas};
    ts[n + 1] = (dq_st_tensor_t){
        .name = "model_ema.decay", .dtype = DQ_DTYPE_F32, .ndim = 0, .data = alphas};
    char path[300];
    snprintf(path, sizeof path, "%s.ckpt.safetensors", s_dir);
    if (dq_safetensors_write(path, ts, n + 2, NULL, 0, s_err, sizeof s_err) < 0)
        fail_msg("%s", s_err);
    dq_model_t *single = dq_model_load(path, s_err, sizeof s_err);
    if (!single) fail_msg("%s", s_err);
    assert_int_equal(single->layout, DQ_MODEL_SINGLE_FILE);
    assert_null(single->vocab_path);
    for (int p = 0; p < DQ_PART_COUNT; p++) {
        const dq_model_component_t *a = &folder->parts[p], *b = &single->parts[p];
        assert_int_equal(a->count, b->count);
        assert_int_equal(b->n_extra, 0);
        for (size_t i = 0; i < a->count; i++) {
            assert_string_equal(a->weights[i].name, b->weights[i].name);
            assert_int_equal(a->weights[i].ndim, b->weights[i].ndim);
            assert_memory_equal(a->weights[i].shape, b->weights[i].shape,
                                sizeof a->weights[i].shape);
            assert_int_equal(a->weights[i].nbytes, b->weights[i].nbytes);
            assert_memory_equal(a->weights[i].data, b->weights[i].data, a->weights[i].nbytes);
        }
    }
    /* Sizes inferred from the tensors match the tiny config (heads are a documented guess: 32/4 =
     * 8). */
    const dq_model_configs_t *x = &folder->cfg, *y = &single->cfg;
    assert_int_equal(y->clip.hidden_size, x->clip.hidden_size);
    assert_int_equal(y->clip.num_hidden_layers, x->clip.num_hidden_layers);
    assert_int_equal(y->clip.intermediate_size, x->clip.intermediate_size);
    assert_int_equal(y->unet.n_blocks, x->unet.n_blocks);
    assert_int_equal(y->unet.layers_per_block, x->unet.layers_per_block);
    assert_int_equal(y->unet.cross_attention_dim, x->unet.cross_attention_dim);
    assert_memory_equal(y->unet.down_block_types, x->unet.down_block_types,
                        sizeof x->unet.down_block_types);
    assert_memory_equal(y->unet.up_block_types, x->unet.up_block_types,
                        sizeof x->unet.up_block_types);
    assert_memory_equal(y->vae.block_out_channels, x->vae.block_out_channels,
                        sizeof x->vae.block_out_channels);
    assert_int_equal(y->vae.layers_per_block, x->vae.layers_per_block);
    dq_model_destroy(&single);
    dq_model_destroy(&folder);
    unlink(path);
    free(ts);
    free(lines);
}

/* Compares every weight of two loaded models: same names, shapes, dtypes and bytes. */
static void s_same_weights(const dq_model_t *a, const dq_model_t *b) {
    for (int p = 0; p < DQ_PART_COUNT; p++) {
        const dq_model_component_t *x = &a->parts[p], *y = &b->parts[p];
        assert_int_equal(x->count, y->count);
        for (size_t i = 0; i < x->count; i++) {
            assert_string_equal(x->weights[i].name, y->weights[i].name);
            assert_int_equal(x->weights[i].dtype, y->weights[i].dtype);
            assert_int_equal(x->weights[i].ndim, y->weights[i].ndim);
            assert_memory_equal(x->weights[i].shape, y->weights[i].shape,
                                sizeof x->weights[i].shape);
            assert_int_equal(x->weights[i].nbytes, y->weights[i].nbytes);
            if (memcmp(x->weights[i].data, y->weights[i].data, x->weights[i].nbytes))
                fail_msg("%s: tensor %s differs between the layouts",
                         dq_model_part_name((dq_model_part_t) p), x->weights[i].name);
        }
    }
}

/* The reference fixtures (tests/reference/generate.py): the tiny folder, written by diffusers and
 * transformers 5, and the same model as an LDM single file hold identical tensors. */
static void test_reference_fixture_layouts_agree(void **state) {
    (void) state;
    const char *dir = s_src("tests/fixtures/tiny-sd"),
               *file = s_src("tests/fixtures/tiny-sd.safetensors");
    dq_model_t *folder = dq_model_load(dir, s_err, sizeof s_err);
    if (!folder) fail_msg("%s", s_err);
    assert_int_equal(folder->parts[DQ_PART_TEXT_ENCODER].dtype, DQ_DTYPE_F16);
    assert_int_equal(folder->cfg.clip.num_hidden_layers, 3);
    assert_int_equal(folder->cfg.clip.eos_token_id, 49407);
    assert_int_equal(folder->cfg.unet.layers_per_block, 2);
    assert_non_null(
        dq_model_weight(folder, DQ_PART_TEXT_ENCODER, "text_model.final_layer_norm.weight"));
    dq_model_t *inferred = dq_model_load(file, s_err, sizeof s_err);
    if (!inferred) fail_msg("%s", s_err);
    s_same_weights(folder, inferred);
    assert_int_equal(inferred->cfg.clip.num_hidden_layers, 3);
    assert_int_equal(inferred->cfg.unet.layers_per_block, 2);
    assert_int_equal(inferred->cfg.vae.block_out_channels[2], 32);
    dq_model_t *configured = dq_model_load_with_configs(file, dir, s_err, sizeof s_err);
    if (!configured) fail_msg("%s", s_err);
    s_same_weights(folder, configured);
    assert_memory_equal(&configured->cfg, &folder->cfg, sizeof folder->cfg);
    assert_non_null(configured->vocab_path);
    assert_null(dq_model_load_with_configs(dir, dir, s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "own configs"));
    dq_model_destroy(&configured);
    dq_model_destroy(&inferred);
    dq_model_destroy(&folder);
}

/* Our CLIP vocabulary equals the reference generator's, built independently from the same BPE file.
 */
static void test_vocab_matches_reference(void **state) {
    (void) state;
    char ours[300], theirs[300];
    snprintf(ours, sizeof ours, "%s/tokenizer/vocab.json", s_dir);
    snprintf(theirs, sizeof theirs, "%s", s_src("tests/fixtures/tiny-sd/tokenizer/vocab.json"));
    json_t *a = json_load_file(ours, 0, NULL), *b = json_load_file(theirs, 0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(json_object_size(a), 49408);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    snprintf(ours, sizeof ours, "%s/tokenizer/merges.txt", s_dir);
    snprintf(theirs, sizeof theirs, "%s", s_src("tests/fixtures/tiny-sd/tokenizer/merges.txt"));
    char cmd[800];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", ours, theirs);
    assert_int_equal(system(cmd), 0);
}

/* The engine's tokenizer reads the tokenizer/ folder that init writes: SD 1.5's well-known ids. */
static void test_tokenizer_reads_init_folder(void **state) {
    (void) state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/tokenizer", s_dir);
    dq_tokenizer_t *tok = dq_tokenizer_load(dir, s_err, sizeof s_err);
    if (!tok) fail_msg("%s", s_err);
    assert_int_equal(dq_tokenizer_vocab_size(tok), 49408);
    assert_int_equal(dq_tokenizer_bos(tok), 49406);
    assert_int_equal(dq_tokenizer_pad_id(tok), 49407);
    int32_t ids[DQ_TOKENIZER_CONTEXT];
    bool truncated;
    int n = dq_tokenizer_encode(tok, "a photo of a cat", ids, DQ_TOKENIZER_CONTEXT, &truncated,
                                s_err, sizeof s_err);
    const int32_t want[] = {49406, 320, 1125, 539, 320, 2368, 49407};
    assert_int_equal(n, 7);
    assert_memory_equal(ids, want, sizeof want);
    dq_tokenizer_destroy(&tok);
}

static void test_bad_paths(void **state) {
    (void) state;
    assert_null(dq_model_load("/nonexistent/model", s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "/nonexistent/model: cannot open"));
    char dir[] = "/tmp/dq-test-empty-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_null(dq_model_load(dir, s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "model_index.json: missing"));
    /* A safetensors file that is not an LDM checkpoint. */
    char path[300];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    float v = 1;
    dq_st_tensor_t t = {.name = "w", .dtype = DQ_DTYPE_F32, .ndim = 1, .shape = {1}, .data = &v};
    assert_int_equal(dq_safetensors_write(path, &t, 1, NULL, 0, s_err, sizeof s_err), 0);
    assert_null(dq_model_load(path, s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "not an SD 1.x checkpoint"));
    /* Not a safetensors file at all. */
    FILE *f = fopen(path, "w");
    fputs("hello, world", f);
    fclose(f);
    assert_null(dq_model_load(path, s_err, sizeof s_err));
    assert_non_null(strstr(s_err, path));
    unlink(path);
    rmdir(dir);
    /* Refuses to overwrite a non-empty folder. */
    dq_model_configs_t cfg;
    dq_model_preset("tiny", &cfg);
    assert_int_equal(dq_model_init_random(s_dir, &cfg, 1, DQ_DTYPE_F32,
                                          s_src("data/clip/bpe_simple_vocab_16e6.txt.gz"), s_err,
                                          sizeof s_err),
                     -1);
    assert_non_null(strstr(s_err, "not empty"));
}

static void test_config_errors(void **state) {
    (void) state;
    dq_unet_config_t u;
    json_t *j = json_loads(
        "{\"down_block_types\": [\"CrossAttnDownBlock2D\", \"SimpleDownBlock\"], "
        "\"up_block_types\": [\"UpBlock2D\", \"UpBlock2D\"], \"block_out_channels\": [32, 64]}",
        0, NULL);
    assert_int_equal(dq_unet_config_from_json(&u, j, "unet/config.json", s_err, sizeof s_err), -1);
    assert_non_null(strstr(
        s_err, "unet/config.json: down_block_types[1] = \"SimpleDownBlock\" is not supported"));
    json_decref(j);
    j = json_loads("{\"layers_per_block\": \"two\"}", 0, NULL);
    assert_int_equal(dq_unet_config_from_json(&u, j, "c.json", s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "\"layers_per_block\" must be an integer"));
    json_decref(j);
    j = json_loads("{\"attention_head_dim\": [7, 10, 20, 20]}", 0, NULL);
    assert_int_equal(dq_unet_config_from_json(&u, j, "c.json", s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "not divisible by 7 attention heads"));
    json_decref(j);
    j = json_loads(
        "{\"attention_head_dim\": [5, 10, 20, 20], \"block_out_channels\": [320, 640, 1280, 1280]}",
        0, NULL);
    assert_int_equal(dq_unet_config_from_json(&u, j, "c.json", s_err, sizeof s_err), 0);
    assert_int_equal(u.num_heads[2], 20);
    assert_true(u.head_dim_is_list);
    json_decref(j);
    j = json_loads("{\"resnet_time_scale_shift\": \"scale_shift\", \"mid_block_scale_factor\": 1}",
                   0, NULL);
    assert_int_equal(dq_unet_config_from_json(&u, j, "c.json", s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "\"resnet_time_scale_shift\" must be \"default\""));
    json_decref(j);
    j = json_loads("{\"resnet_out_scale_factor\": 1, \"transformer_layers_per_block\": 1, "
                   "\"num_attention_heads\": null}",
                   0, NULL);
    assert_int_equal(dq_unet_config_from_json(&u, j, "c.json", s_err, sizeof s_err), 0);
    json_decref(j);
    dq_clip_config_t c;
    j = json_loads("{\"hidden_size\": 100, \"num_attention_heads\": 3}", 0, NULL);
    assert_int_equal(dq_clip_config_from_json(&c, j, "te.json", s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "not divisible"));
    json_decref(j);
    /* A scheduler file records which keys it holds: from_config carries only those. */
    dq_scheduler_config_t s;
    j = json_loads("{\"_class_name\": \"DDIMScheduler\", \"steps_offset\": 1, "
                   "\"beta_schedule\": \"scaled_linear\", \"trained_betas\": null}", 0, NULL);
    assert_int_equal(dq_scheduler_config_from_json(&s, j, "s.json", s_err, sizeof s_err), 0);
    assert_string_equal(s.class_name, "DDIMScheduler");
    assert_int_equal(s.sched.has, DQ_SCHED_HAS_STEPS_OFFSET | DQ_SCHED_HAS_BETA_SCHEDULE);
    assert_int_equal(s.sched.beta_schedule, DQ_BETA_SCALED_LINEAR);
    json_t *back = dq_scheduler_config_to_json(&s);
    assert_non_null(json_object_get(back, "steps_offset"));
    assert_null(json_object_get(back, "timestep_spacing"));
    json_decref(back);
    json_decref(j);
    j = json_loads("{\"_class_name\": \"PNDMScheduler\", \"beta_schedule\": \"cosine\"}", 0, NULL);
    assert_int_equal(dq_scheduler_config_from_json(&s, j, "s.json", s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "beta_schedule"));
    json_decref(j);
    j = json_loads("{\"_class_name\": \"PNDMScheduler\", \"trained_betas\": [0.1]}", 0, NULL);
    assert_int_equal(dq_scheduler_config_from_json(&s, j, "s.json", s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "trained_betas"));
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_then_load),
        cmocka_unit_test(test_missing_tensor_is_named),
        cmocka_unit_test(test_wrong_shape_is_named),
        cmocka_unit_test(test_extras_and_unprefixed_clip),
        cmocka_unit_test(test_ldm_mapping_tiny),
        cmocka_unit_test(test_ldm_mapping_sd15),
        cmocka_unit_test(test_single_file_matches_folder),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_reference_fixture_layouts_agree),
        cmocka_unit_test(test_vocab_matches_reference),
        cmocka_unit_test(test_tokenizer_reads_init_folder),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
