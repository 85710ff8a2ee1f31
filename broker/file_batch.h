/* broker/file_batch.h: writes a batch of files durably, several at once. Each file is created,
 * written and fdatasync()ed by one of a few worker threads: the device then sees many flushes
 * together (the block layer merges them) instead of one after another, which is what lets the
 * broker commit thousands of small images a second on one disk. */
#ifndef DQ_BROKER_FILE_BATCH_H
#define DQ_BROKER_FILE_BATCH_H

#include <stddef.h>
#include <stdint.h>

/* One file to write. `error` is set by dq_file_batch_write: 0, or the errno of the step that
 * failed (`what` names it: "create", "write", "sync", "close"); a failed file is removed. */
typedef struct {
    const char *path;     /* borrowed; created, or truncated if it exists */
    const uint8_t *bytes; /* borrowed */
    size_t size;
    int error;
    const char *what; /* static string, NULL on success */
} dq_file_item_t;

typedef struct dq_file_batch dq_file_batch_t;

/* Starts `threads` workers (1..64). Returns NULL when out of memory or threads cannot start. */
dq_file_batch_t *dq_file_batch_new(int threads);
/* Writes every item (create or truncate, write, fdatasync, close) and returns when all are done;
 * returns the number that failed. Not reentrant: one batch at a time per dq_file_batch_t. */
size_t dq_file_batch_write(dq_file_batch_t *self, dq_file_item_t *items, size_t n);
/* Stops the workers and frees; NULL-safe, sets *self NULL. */
void dq_file_batch_destroy(dq_file_batch_t **self);

#endif
