/* node/rank.h: a rank process: one per GPU (or per --cpu-ranks), started by the node with
 * fork+exec of diffq-node in rank mode. It loads its model once, then renders the shards the node
 * hands it over a socketpair (node/rankio.h), one after another. */
#ifndef DQ_NODE_RANK_H
#define DQ_NODE_RANK_H

/* The argument that puts diffq-node in rank mode: "diffq-node --rank-fd FD". */
#define DQ_RANK_FD_FLAG "--rank-fd"

/* Runs a rank on fd (a connected socketpair end, owned) until the node closes its end. Returns
 * the process exit code: 0 when the node closed the pipe, DQ_RANK_EXIT_START when the backend or
 * model could not be set up (reported to the node first), DQ_RANK_EXIT_PIPE on a broken or
 * malformed pipe. */
int dq_rank_main(int fd);

enum { DQ_RANK_EXIT_START = 10, DQ_RANK_EXIT_PIPE = 11 };

/* Maps a dq_render_rc_t failure to the wire's dq_fail_class_t. */
int dq_rank_fail_class(int render_rc);

#endif
