/* node/setup.h: turning diffq-node's options into node parameters: models (--model, --models),
 * ranks and devices (--gpus, --cpu-ranks). */
#ifndef DQ_NODE_SETUP_H
#define DQ_NODE_SETUP_H

#include <stdbool.h>
#include <stddef.h>

#include "node/node.h"

/* Adds the model `arg`: a name ("sd15") or a path ("/models/sd15.safetensors", named "sd15":
 * the file name without .safetensors or .ckpt). Returns 0, or -1 with a message in err (too many
 * models, name too long). */
int dq_setup_model(dq_node_params_t *p, const char *arg, char *err, size_t errlen);

/* Adds every entry of directory dir (files and folders, not hidden ones, in name order) as a
 * model. Returns 0, or -1 with a message in err (unreadable, empty, too many). */
int dq_setup_models_dir(dq_node_params_t *p, const char *dir, char *err, size_t errlen);

/* Chooses ranks and devices: gpus ("all" or "0,1,...", NULL when not given) or cpu_ranks (0:
 * not given). Neither given: every GPU when the CUDA backend is built and sees some, else one CPU
 * rank. Fills p->n_ranks, p->rank_devices (malloc'd into *devices_out, caller frees),
 * p->devices, p->n_devices. Returns 0, or DQ_NODE_EXIT_USAGE / DQ_NODE_EXIT_DEVICE with a
 * message in err. */
int dq_setup_ranks(dq_node_params_t *p, const char *gpus, long cpu_ranks, char (**devices_out)[64],
                   char *err, size_t errlen);

/* Sets p->max_batch, the most images a rank renders in one pipeline batch: `value` when given
 * (1..DQ_PROTO_MAX_BATCH_IMAGES), else DQ_SETUP_MAX_BATCH_GPU for GPU ranks and
 * DQ_SETUP_MAX_BATCH_CPU for CPU ranks and the null backend. Call after dq_setup_ranks (it reads
 * p->rank_devices and p->backend). Returns 0, or DQ_NODE_EXIT_USAGE with a message in err. */
#define DQ_SETUP_MAX_BATCH_GPU 8 /* images per batch on a GPU rank unless told otherwise */
#define DQ_SETUP_MAX_BATCH_CPU 4 /* images on a CPU rank or the null backend: the shard size the
                                    broker used before shards followed the node (--shard-size 4) */
int dq_setup_max_batch(dq_node_params_t *p, bool given, long value, char *err, size_t errlen);

#endif
