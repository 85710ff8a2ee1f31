/* kernels/tokenizer_map.h: a string -> int32 hash table for the tokenizer's vocabulary and merges.
 */
#ifndef DQ_TOKENIZER_MAP_H
#define DQ_TOKENIZER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keys are byte strings given with their length. The table
 * owns copies of its keys. It only grows; there is no removal. */
typedef struct dq_tokmap_t dq_tokmap_t;

/* Makes an empty table sized for about `expected` keys. Returns NULL when out of memory. */
dq_tokmap_t *dq_tokmap_new(size_t expected);
void dq_tokmap_destroy(dq_tokmap_t **self_p);

/* Inserts key (len bytes) with value, or replaces the value of an existing key. Returns 0, 1 when
 * the key was already there (its value is replaced), or -1 when out of memory (table unchanged). */
int dq_tokmap_put(dq_tokmap_t *self, const char *key, size_t len, int32_t value);

/* Looks key (len bytes) up. Returns true and sets *value when found. */
bool dq_tokmap_get(const dq_tokmap_t *self, const char *key, size_t len, int32_t *value);

/* Number of keys. */
size_t dq_tokmap_size(const dq_tokmap_t *self);

#endif
