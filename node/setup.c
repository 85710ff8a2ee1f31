/* node/setup.c: models and ranks from diffq-node's options. */
#include "config.h"

#include "node/setup.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef DQ_HAVE_CUDA
#include "kernels/cuda/device.h"
#endif

int dq_setup_model(dq_node_params_t *p, const char *arg, char *err, size_t errlen) {
    if (p->n_models == DQ_PROTO_MAX_MODELS) {
        snprintf(err, errlen, "more than %d models", DQ_PROTO_MAX_MODELS);
        return -1;
    }
    const char *base = strrchr(arg, '/');
    base = base ? base + 1 : arg;
    size_t len = strlen(base);
    static const char *exts[] = {".safetensors", ".ckpt"};
    for (size_t i = 0; i < 2; i++) {
        size_t el = strlen(exts[i]);
        if (len >= el && strcmp(base + len - el, exts[i]) == 0) len -= el;
    }
    if (len == 0 || len > DQ_PROTO_MAX_NAME || strlen(arg) > DQ_PROTO_MAX_PATH) {
        snprintf(err, errlen, "model '%s': expected a name of 1..%d bytes (or a path to one)", arg,
                 DQ_PROTO_MAX_NAME);
        return -1;
    }
    dq_node_model_t *m = &p->models[p->n_models];
    snprintf(m->name, sizeof m->name, "%.*s", (int) len, base);
    for (uint32_t i = 0; i < p->n_models; i++)
        if (strcmp(p->models[i].name, m->name) == 0) {
            snprintf(err, errlen, "model '%s' given twice", m->name);
            return -1;
        }
    snprintf(m->spec, sizeof m->spec, "%s", arg);
    p->n_models++;
    return 0;
}

static int s_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *) a, *(char *const *) b);
}

int dq_setup_models_dir(dq_node_params_t *p, const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "--models %s: %s", dir, strerror(errno));
        return -1;
    }
    char *names[DQ_PROTO_MAX_MODELS + 1];
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n <= DQ_PROTO_MAX_MODELS)
        if (e->d_name[0] != '.' && !(names[n++] = strdup(e->d_name))) rc = -1;
    closedir(d);
    if (rc == 0 && n == 0) snprintf(err, errlen, "--models %s: no models in it", dir), rc = -1;
    if (rc == 0) qsort(names, n, sizeof names[0], s_cmp);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[DQ_PROTO_MAX_PATH + 2];
        if ((size_t) snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path)
            snprintf(err, errlen, "--models %s: path too long", dir), rc = -1;
        else
            rc = dq_setup_model(p, path, err, errlen);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return rc;
}

/* Host memory in bytes, for the cpu device. */
static uint64_t s_host_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t) pages * (uint64_t) size : 0;
}

#ifdef DQ_HAVE_CUDA
/* Parses "all" or "0,1,..." against count visible GPUs into ids. Returns how many, or -1. */
static int s_parse_gpus(const char *gpus, int count, int *ids, char *err, size_t errlen) {
    int n = 0;
    if (strcmp(gpus, "all") == 0) {
        for (int i = 0; i < count && i < DQ_PROTO_MAX_DEVICES; i++)
            ids[n++] = i;
        return n;
    }
    const char *s = gpus;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || (*end && *end != ',')) {
            snprintf(err, errlen, "--gpus %s: expected all or a list like 0,1", gpus);
            return -1;
        }
        if (v >= count || n == DQ_PROTO_MAX_DEVICES) {
            snprintf(err, errlen, "--gpus %s: GPU %ld does not exist (%d visible)", gpus, v, count);
            return -1;
        }
        ids[n++] = (int) v;
        s = *end ? end + 1 : end;
    }
    return n;
}
#endif

int dq_setup_ranks(dq_node_params_t *p, const char *gpus, long cpu_ranks, char (**devices_out)[64],
                   char *err, size_t errlen) {
    *devices_out = NULL;
    if (gpus && cpu_ranks) {
        snprintf(err, errlen, "--gpus and --cpu-ranks exclude each other");
        return DQ_NODE_EXIT_USAGE;
    }
    if (cpu_ranks < 0 || cpu_ranks > DQ_PROTO_MAX_RANKS) {
        snprintf(err, errlen, "--cpu-ranks %ld: expected 1..%d", cpu_ranks, DQ_PROTO_MAX_RANKS);
        return DQ_NODE_EXIT_USAGE;
    }
#ifdef DQ_HAVE_CUDA
    if (!cpu_ranks) {
        char cerr[256] = "";
        int count = dq_cuda_device_count(cerr, sizeof cerr);
        if (gpus && count == 0) {
            snprintf(err, errlen, "--gpus %s: no CUDA device visible%s%s", gpus,
                     cerr[0] ? ": " : "", cerr);
            return DQ_NODE_EXIT_DEVICE;
        }
        if (count > 0) {
            int ids[DQ_PROTO_MAX_DEVICES];
            int n = s_parse_gpus(gpus ? gpus : "all", count, ids, err, errlen);
            if (n < 0) return DQ_NODE_EXIT_DEVICE;
            if (!(*devices_out = calloc((size_t) n, sizeof **devices_out))) {
                snprintf(err, errlen, "out of memory");
                return DQ_NODE_EXIT_INTERNAL;
            }
            for (int i = 0; i < n; i++) {
                dq_cuda_device_info_t info;
                if (dq_cuda_device_info(ids[i], &info, err, errlen) != 0)
                    return DQ_NODE_EXIT_DEVICE;
                snprintf((*devices_out)[i], 64, "cuda:%d", ids[i]);
                snprintf(p->devices[i].name, sizeof p->devices[i].name, "cuda:%d %.100s", ids[i],
                         info.name);
                p->devices[i].memory = info.total_memory;
            }
            p->n_ranks = p->n_devices = (uint32_t) n;
            p->rank_devices = *devices_out;
            return 0;
        }
    }
#else
    if (gpus) {
        snprintf(err, errlen,
                 "--gpus %s: the CUDA backend is not built into this diffq-node "
                 "(configure --with-cuda); use --cpu-ranks N",
                 gpus);
        return DQ_NODE_EXIT_DEVICE;
    }
#endif
    uint32_t n = cpu_ranks ? (uint32_t) cpu_ranks : 1;
    if (!(*devices_out = calloc(n, sizeof **devices_out))) {
        snprintf(err, errlen, "out of memory");
        return DQ_NODE_EXIT_INTERNAL;
    }
    for (uint32_t i = 0; i < n; i++)
        snprintf((*devices_out)[i], 64, "cpu");
    snprintf(p->devices[0].name, sizeof p->devices[0].name, "cpu");
    p->devices[0].memory = s_host_memory();
    p->n_devices = 1;
    p->n_ranks = n;
    p->rank_devices = *devices_out;
    return 0;
}

int dq_setup_max_batch(dq_node_params_t *p, bool given, long value, char *err, size_t errlen) {
    if (given) {
        if (value < 1 || value > DQ_PROTO_MAX_BATCH_IMAGES) {
            snprintf(err, errlen, "--max-batch %ld: expected 1..%d images", value,
                     DQ_PROTO_MAX_BATCH_IMAGES);
            return DQ_NODE_EXIT_USAGE;
        }
        p->max_batch = (uint32_t) value;
        return 0;
    }
    bool gpu = p->n_ranks > 0 && p->rank_devices && strncmp(p->rank_devices[0], "cuda", 4) == 0;
    bool null = p->backend && strcmp(p->backend, "null") == 0;
    p->max_batch = gpu && !null ? DQ_SETUP_MAX_BATCH_GPU : DQ_SETUP_MAX_BATCH_CPU;
    return 0;
}
