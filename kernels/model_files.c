/* kernels/model_files.c: the model loader: finds the files of either layout, parses the configs,
 * maps the weights and checks them against the parameter manifests. */
#include "config.h"

#include "kernels/model_files.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "kernels/model_ldm.h"
#include "kernels/model_manifest.h"

static void s_fail(char *err, size_t errlen, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_fail(char *err, size_t errlen, const char *file, const char *fmt, ...) {
    if (!err || !errlen) return;
    int n = snprintf(err, errlen, "%s: ", file);
    if (n < 0 || (size_t) n >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
    va_end(ap);
}

const char *dq_model_layout_name(dq_model_layout_t layout) {
    return layout == DQ_MODEL_DIFFUSERS     ? "diffusers"
           : layout == DQ_MODEL_SINGLE_FILE ? "single-file"
                                            : "?";
}

static int s_cmp_weight(const void *a, const void *b) {
    return strcmp(((const dq_weight_t *) a)->name, ((const dq_weight_t *) b)->name);
}

static const dq_weight_t *s_find(const dq_weight_t *w, size_t n, const char *name) {
    dq_weight_t key = {.name = name};
    return n ? bsearch(&key, w, n, sizeof key, s_cmp_weight) : NULL;
}

const dq_weight_t *dq_model_weight(const dq_model_t *self, dq_model_part_t part, const char *name) {
    if ((unsigned) part >= DQ_PART_COUNT) return NULL;
    return s_find(self->parts[part].weights, self->parts[part].count, name);
}

/* Tensors a file may carry that no network parameter corresponds to, and that are not worth a
 * warning. */
static int s_known_extra(const char *name) {
    return !strcmp(name, "text_model.embeddings.position_ids");
}

static void s_shape_str(const int64_t *shape, int ndim, char *buf, size_t len) {
    int n = snprintf(buf, len, "[");
    for (int d = 0; d < ndim && n > 0 && (size_t) n < len; d++)
        n += snprintf(buf + n, len - (size_t) n, d ? ", %lld" : "%lld", (long long) shape[d]);
    if (n > 0 && (size_t) n < len) snprintf(buf + n, len - (size_t) n, "]");
}

/* Checks the candidate tensors of one part (sorted by name) against its manifest and keeps exactly
 * the manifest's weights in `comp`. Squeezes [C, C, 1, 1] to [C, C] where the manifest wants 2 dims
 * and squeeze_ok is set. Returns 0 or -1 with err naming the tensor and file. */
static int s_check_part(dq_model_component_t *comp, dq_model_part_t part, dq_weight_t *cand,
                        size_t n_cand, const dq_param_list_t *manifest, int squeeze_ok, char *err,
                        size_t errlen) {
    comp->weights = calloc(manifest->count ? manifest->count : 1, sizeof *comp->weights);
    if (!comp->weights) {
        s_fail(err, errlen, comp->file, "out of memory");
        return -1;
    }
    size_t by_dtype[DQ_DTYPE_COUNT] = {0};
    for (size_t i = 0; i < manifest->count; i++) {
        const dq_param_t *p = &manifest->items[i];
        const dq_weight_t *w = s_find(cand, n_cand, p->name);
        char want[96], got[96];
        s_shape_str(p->shape, p->ndim, want, sizeof want);
        if (!w) {
            s_fail(err, errlen, comp->file, "%s: missing tensor '%s' (expected shape %s)",
                   dq_model_part_name(part), p->name, want);
            return -1;
        }
        dq_weight_t v = *w;
        if (squeeze_ok && p->ndim == 2 && v.ndim == 4 && v.shape[2] == 1 && v.shape[3] == 1)
            v.ndim = 2;
        int same = v.ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++)
            same = v.shape[d] == p->shape[d];
        if (!same) {
            s_shape_str(w->shape, w->ndim, got, sizeof got);
            s_fail(err, errlen, comp->file, "%s: tensor '%s' has shape %s, expected %s",
                   dq_model_part_name(part), p->name, got, want);
            return -1;
        }
        if (!dq_dtype_is_float(v.dtype)) {
            s_fail(err, errlen, comp->file, "%s: tensor '%s' has dtype %s, expected a float type",
                   dq_model_part_name(part), p->name, dq_dtype_name(v.dtype));
            return -1;
        }
        v.shape[2] = v.ndim > 2 ? v.shape[2] : 0;
        v.shape[3] = v.ndim > 3 ? v.shape[3] : 0;
        comp->weights[comp->count++] = v;
        comp->n_params += (int64_t) (v.nbytes / dq_dtype_size(v.dtype));
        by_dtype[v.dtype]++;
    }
    qsort(comp->weights, comp->count, sizeof *comp->weights, s_cmp_weight);
    size_t best = 0;
    for (int t = 0; t < DQ_DTYPE_COUNT; t++)
        if (by_dtype[t] > by_dtype[best]) best = (size_t) t;
    comp->dtype = (dq_dtype_t) best;
    comp->mixed_dtypes = by_dtype[best] != comp->count;
    /* Everything else in the part is unused: worth a warning, as a misnamed tensor shows up here
     * too. */
    const char *first = NULL;
    for (size_t i = 0; i < n_cand; i++)
        if (!s_find(comp->weights, comp->count, cand[i].name) && !s_known_extra(cand[i].name)) {
            comp->n_extra++;
            if (!first) first = cand[i].name;
        }
    if (comp->n_extra)
        dq_warn("model: %s has %zu unexpected tensors (ignored) file=%s first=%s",
                dq_model_part_name(part), comp->n_extra, comp->file, first);
    return 0;
}

static int s_manifest(const dq_model_configs_t *cfg, dq_model_part_t part, dq_param_list_t *list) {
    return part == DQ_PART_TEXT_ENCODER ? dq_manifest_clip(&cfg->clip, list)
           : part == DQ_PART_UNET       ? dq_manifest_unet(&cfg->unet, list)
                                        : dq_manifest_vae(&cfg->vae, list);
}

/* ---- Diffusers folder */

static char *s_join(const char *dir, const char *rel) {
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

static int s_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Parses <dir>/<rel> with `parse`; returns 0 or -1 with err. */
typedef int (*s_parse_fn)(void *cfg, const json_t *root, const char *file, char *err,
                          size_t errlen);
static int s_load_config(const char *dir, const char *rel, s_parse_fn parse, void *cfg, char *err,
                         size_t errlen) {
    char *path = s_join(dir, rel);
    if (!path) return -1;
    int rc = -1;
    if (!s_is_file(path)) {
        s_fail(err, errlen, path, "missing (a diffusers model folder needs it)");
    } else {
        json_t *root = dq_json_load_file(path, err, errlen);
        if (root) rc = parse(cfg, root, path, err, errlen);
        json_decref(root);
    }
    free(path);
    return rc;
}

static int s_parse_clip(void *c, const json_t *r, const char *f, char *e, size_t n) {
    return dq_clip_config_from_json(c, r, f, e, n);
}
static int s_parse_unet(void *c, const json_t *r, const char *f, char *e, size_t n) {
    return dq_unet_config_from_json(c, r, f, e, n);
}
static int s_parse_vae(void *c, const json_t *r, const char *f, char *e, size_t n) {
    return dq_vae_config_from_json(c, r, f, e, n);
}
static int s_parse_sched(void *c, const json_t *r, const char *f, char *e, size_t n) {
    return dq_scheduler_config_from_json(c, r, f, e, n);
}

static int s_parse_index(void *c, const json_t *r, const char *f, char *e, size_t n) {
    (void) c;
    static const char *parts[] = {"text_encoder", "unet", "vae", "scheduler", "tokenizer"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (!json_is_array(json_object_get(r, parts[i]))) {
            s_fail(e, n, f, "no \"%s\" entry: not a Stable Diffusion pipeline", parts[i]);
            return -1;
        }
    return 0;
}

/* Opens <dir>/<part>/<name>.safetensors, or the fp16 variant diffusers writes
 * (<name>.fp16.safetensors). */
static int s_open_weights(dq_model_t *m, dq_model_part_t part, const char *dir, char *err,
                          size_t errlen) {
    const char *base = part == DQ_PART_TEXT_ENCODER ? "model" : "diffusion_pytorch_model";
    char rel[128];
    snprintf(rel, sizeof rel, "%s/%s.safetensors", dq_model_part_name(part), base);
    char *path = s_join(dir, rel);
    if (path && !s_is_file(path)) {
        char alt[128];
        snprintf(alt, sizeof alt, "%s/%s.fp16.safetensors", dq_model_part_name(part), base);
        char *alt_path = s_join(dir, alt);
        if (alt_path && s_is_file(alt_path)) {
            free(path);
            path = alt_path;
        } else {
            free(alt_path);
            s_fail(err, errlen, path ? path : dir,
                   "missing (only unsharded .safetensors weights are supported)");
            free(path);
            return -1;
        }
    }
    if (!path) return -1;
    m->parts[part].file = path;
    m->files[part] = dq_safetensors_open(path, err, errlen);
    return m->files[part] ? 0 : -1;
}

/* The candidates of a folder part: every tensor of its file; CLIP names gain "text_model." when the
 * file was written by transformers 5 (which drops that level). */
static int s_folder_part(dq_model_t *m, dq_model_part_t part, char *err, size_t errlen) {
    dq_safetensors_t *st = m->files[part];
    dq_model_component_t *comp = &m->parts[part];
    size_t n = dq_safetensors_count(st);
    dq_weight_t *cand = calloc(n ? n : 1, sizeof *cand);
    if (part == DQ_PART_TEXT_ENCODER)
        comp->owned_names = calloc(n ? n : 1, sizeof *comp->owned_names);
    if (!cand || (part == DQ_PART_TEXT_ENCODER && !comp->owned_names)) {
        free(cand);
        s_fail(err, errlen, comp->file, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const dq_st_tensor_t *t = dq_safetensors_at(st, i);
        cand[i] = (dq_weight_t){t->name, t->dtype, t->ndim, {0}, t->data, t->nbytes};
        memcpy(cand[i].shape, t->shape, sizeof t->shape);
        if (part == DQ_PART_TEXT_ENCODER && strncmp(t->name, "text_model.", 11)) {
            size_t len = strlen(t->name) + 12;
            comp->owned_names[i] = malloc(len);
            if (!comp->owned_names[i]) {
                free(cand);
                s_fail(err, errlen, comp->file, "out of memory");
                return -1;
            }
            snprintf(comp->owned_names[i], len, "text_model.%s", t->name);
            cand[i].name = comp->owned_names[i];
        }
    }
    qsort(cand, n, sizeof *cand, s_cmp_weight);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(cand[i].name, cand[i - 1].name)) {
            s_fail(err, errlen, comp->file,
                   "tensor '%s' appears with and without the text_model. prefix", cand[i].name);
            free(cand);
            return -1;
        }
    dq_param_list_t manifest = {0};
    int rc = s_manifest(&m->cfg, part, &manifest);
    if (rc < 0)
        s_fail(err, errlen, comp->file, "out of memory");
    else
        rc = s_check_part(comp, part, cand, n, &manifest, 0, err, errlen);
    dq_param_list_free(&manifest);
    free(cand);
    return rc;
}

/* The configs and tokenizer files of a diffusers folder (everything but the weights). */
static int s_load_configs(dq_model_t *m, const char *dir, char *err, size_t errlen) {
    if (s_load_config(dir, "model_index.json", s_parse_index, NULL, err, errlen) ||
        s_load_config(dir, "text_encoder/config.json", s_parse_clip, &m->cfg.clip, err, errlen) ||
        s_load_config(dir, "unet/config.json", s_parse_unet, &m->cfg.unet, err, errlen) ||
        s_load_config(dir, "vae/config.json", s_parse_vae, &m->cfg.vae, err, errlen) ||
        s_load_config(dir, "scheduler/scheduler_config.json", s_parse_sched, &m->cfg.scheduler, err,
                      errlen))
        return -1;
    m->vocab_path = s_join(dir, "tokenizer/vocab.json");
    m->merges_path = s_join(dir, "tokenizer/merges.txt");
    m->tokenizer_json_path = s_join(dir, "tokenizer/tokenizer.json");
    if (!m->vocab_path || !m->merges_path || !m->tokenizer_json_path) return -1;
    if (s_is_file(m->vocab_path) && s_is_file(m->merges_path)) {
        free(m->tokenizer_json_path);
        m->tokenizer_json_path = NULL;
    } else if (s_is_file(m->tokenizer_json_path)) {
        free(m->vocab_path);
        free(m->merges_path);
        m->vocab_path = m->merges_path = NULL;
    } else {
        s_fail(err, errlen, dir, "tokenizer/ needs vocab.json and merges.txt, or tokenizer.json");
        return -1;
    }
    return 0;
}

static int s_load_folder(dq_model_t *m, const char *dir, char *err, size_t errlen) {
    m->layout = DQ_MODEL_DIFFUSERS;
    if (s_load_configs(m, dir, err, errlen)) return -1;
    for (int p = 0; p < DQ_PART_COUNT; p++)
        if (s_open_weights(m, (dq_model_part_t) p, dir, err, errlen) ||
            s_folder_part(m, (dq_model_part_t) p, err, errlen))
            return -1;
    return 0;
}

/* ---- Single-file LDM checkpoint */

typedef struct {
    dq_weight_t *cand[DQ_PART_COUNT]; /* mapped tensors per part, sorted by name */
    size_t n[DQ_PART_COUNT];
} s_mapped_t;

static const dq_weight_t *s_mapped_find(void *ctx, dq_model_part_t part, const char *name) {
    s_mapped_t *mp = ctx;
    return s_find(mp->cand[part], mp->n[part], name);
}

static int s_load_single(dq_model_t *m, const char *path, const char *config_dir, char *err,
                         size_t errlen) {
    m->layout = DQ_MODEL_SINGLE_FILE;
    if (config_dir && s_load_configs(m, config_dir, err, errlen)) return -1;
    dq_safetensors_t *st = m->files[0] = dq_safetensors_open(path, err, errlen);
    if (!st) return -1;
    dq_ldm_layout_t lay;
    if (dq_ldm_layout_scan(st, &lay, err, errlen) < 0) return -1;
    size_t n = dq_safetensors_count(st);
    s_mapped_t mp = {{0}, {0}};
    char **names = calloc(n ? n : 1, sizeof *names);
    int rc = -1;
    for (int p = 0; p < DQ_PART_COUNT; p++) {
        mp.cand[p] = calloc(n ? n : 1, sizeof **mp.cand);
        m->parts[p].file = strdup(path);
        if (!mp.cand[p] || !m->parts[p].file) goto oom;
    }
    if (!names) goto oom;
    /* All mapped names live in the text encoder's owned_names; the other parts borrow them. */
    m->parts[DQ_PART_TEXT_ENCODER].owned_names = names;
    for (size_t i = 0; i < n; i++) {
        const dq_st_tensor_t *t = dq_safetensors_at(st, i);
        char name[256];
        bool squeeze;
        int part = dq_ldm_map_key(&lay, t->name, name, sizeof name, &squeeze);
        if (part < 0) {
            dq_debug("model: ignoring tensor file=%s name=%s", path, t->name);
            continue;
        }
        if (!(names[i] = strdup(name))) goto oom;
        dq_weight_t *w = &mp.cand[part][mp.n[part]++];
        *w = (dq_weight_t){names[i], t->dtype, t->ndim, {0}, t->data, t->nbytes};
        memcpy(w->shape, t->shape, sizeof t->shape);
        if (squeeze && w->ndim == 4 && w->shape[2] == 1 && w->shape[3] == 1)
            w->ndim = 2, w->shape[2] = w->shape[3] = 0;
    }
    for (int p = 0; p < DQ_PART_COUNT; p++) {
        qsort(mp.cand[p], mp.n[p], sizeof *mp.cand[p], s_cmp_weight);
        for (size_t i = 1; i < mp.n[p]; i++)
            if (!strcmp(mp.cand[p][i].name, mp.cand[p][i - 1].name)) {
                s_fail(err, errlen, path, "two tensors map to '%s'", mp.cand[p][i].name);
                goto done;
            }
    }
    if (!config_dir && dq_model_infer_configs(&m->cfg, s_mapped_find, &mp, path, err, errlen) < 0)
        goto done;
    for (int p = 0; p < DQ_PART_COUNT; p++) {
        dq_param_list_t manifest = {0};
        if (s_manifest(&m->cfg, (dq_model_part_t) p, &manifest) < 0) {
            dq_param_list_free(&manifest);
            goto oom;
        }
        int prc = s_check_part(&m->parts[p], (dq_model_part_t) p, mp.cand[p], mp.n[p], &manifest, 1,
                               err, errlen);
        dq_param_list_free(&manifest);
        if (prc < 0) goto done;
    }
    rc = 0;
    goto done;
oom:
    s_fail(err, errlen, path, "out of memory");
    if (!m->parts[DQ_PART_TEXT_ENCODER].owned_names) free(names);
done:
    for (int p = 0; p < DQ_PART_COUNT; p++)
        free(mp.cand[p]);
    return rc;
}

/* ---- Public */

dq_model_t *dq_model_load(const char *path, char *err, size_t errlen) {
    return dq_model_load_with_configs(path, NULL, err, errlen);
}

dq_model_t *dq_model_load_with_configs(const char *path, const char *config_dir, char *err,
                                       size_t errlen) {
    struct stat st;
    if (stat(path, &st) < 0) {
        s_fail(err, errlen, path, "cannot open: %s", strerror(errno));
        return NULL;
    }
    dq_model_t *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        s_fail(err, errlen, path, "out of memory");
        return NULL;
    }
    int rc;
    if (S_ISDIR(st.st_mode) && config_dir) {
        s_fail(err, errlen, path,
               "a model folder has its own configs (a config folder goes with a single file)");
        rc = -1;
    } else if (S_ISDIR(st.st_mode)) {
        rc = s_load_folder(m, path, err, errlen);
    } else if (S_ISREG(st.st_mode)) {
        rc = s_load_single(m, path, config_dir, err, errlen);
    } else {
        s_fail(err, errlen, path, "neither a model folder nor a .safetensors file");
        rc = -1;
    }
    if (rc < 0) dq_model_destroy(&m);
    return m;
}

void dq_model_destroy(dq_model_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_model_t *m = *self_p;
    for (int p = 0; p < DQ_PART_COUNT; p++) {
        dq_model_component_t *c = &m->parts[p];
        /* owned_names has one slot per tensor of the file it was built from (NULL where unused). */
        if (c->owned_names) {
            const dq_safetensors_t *st = m->files[m->layout == DQ_MODEL_SINGLE_FILE ? 0 : p];
            size_t n = st ? dq_safetensors_count(st) : 0;
            for (size_t i = 0; i < n; i++)
                free(c->owned_names[i]);
            free(c->owned_names);
        }
        free(c->weights);
        free(c->file);
        dq_safetensors_destroy(&m->files[p]);
    }
    free(m->vocab_path);
    free(m->merges_path);
    free(m->tokenizer_json_path);
    free(m->path);
    free(m);
    *self_p = NULL;
}
