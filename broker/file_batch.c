/* broker/file_batch.c: a small fixed pool of threads that write files durably (file_batch.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "broker/file_batch.h"

struct dq_file_batch {
    pthread_mutex_t mu;
    pthread_cond_t work, done; /* work: a batch or stop is posted; done: a batch finished */
    pthread_t *threads;
    int n_threads;
    dq_file_item_t *items; /* the batch being written, NULL between batches */
    size_t n, next, finished, failed;
    bool stop;
};

static void s_write_one(dq_file_item_t *it) {
    it->error = 0;
    it->what = NULL;
    int fd = open(it->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        it->error = errno;
        it->what = "create";
        return;
    }
    size_t done = 0;
    while (done < it->size && !it->what) {
        ssize_t n = write(fd, it->bytes + done, it->size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            it->error = n < 0 ? errno : EIO;
            it->what = "write";
        } else {
            done += (size_t) n;
        }
    }
    if (!it->what && fdatasync(fd) != 0) {
        it->error = errno;
        it->what = "sync";
    }
    if (close(fd) != 0 && !it->what) {
        it->error = errno;
        it->what = "close";
    }
    if (it->what) unlink(it->path);
}

static void *s_worker(void *arg) {
    dq_file_batch_t *self = arg;
    pthread_mutex_lock(&self->mu);
    for (;;) {
        while (!self->stop && (!self->items || self->next >= self->n))
            pthread_cond_wait(&self->work, &self->mu);
        if (self->stop) break;
        dq_file_item_t *it = &self->items[self->next++];
        pthread_mutex_unlock(&self->mu);
        s_write_one(it);
        pthread_mutex_lock(&self->mu);
        if (it->what) self->failed++;
        if (++self->finished == self->n) pthread_cond_signal(&self->done);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

dq_file_batch_t *dq_file_batch_new(int threads) {
    if (threads < 1 || threads > 64) return NULL;
    dq_file_batch_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    self->threads = calloc((size_t) threads, sizeof *self->threads);
    if (!self->threads) {
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->work, NULL);
    pthread_cond_init(&self->done, NULL);
    for (; self->n_threads < threads; self->n_threads++)
        if (pthread_create(&self->threads[self->n_threads], NULL, s_worker, self) != 0) {
            dq_file_batch_destroy(&self);
            return NULL;
        }
    return self;
}

size_t dq_file_batch_write(dq_file_batch_t *self, dq_file_item_t *items, size_t n) {
    if (n == 0) return 0;
    if (n == 1) { /* no hand-over for a lone file */
        s_write_one(items);
        return items->what ? 1 : 0;
    }
    pthread_mutex_lock(&self->mu);
    self->items = items;
    self->n = n;
    self->next = self->finished = self->failed = 0;
    pthread_cond_broadcast(&self->work);
    while (self->finished < n)
        pthread_cond_wait(&self->done, &self->mu);
    size_t failed = self->failed;
    self->items = NULL;
    self->n = self->next = 0;
    pthread_mutex_unlock(&self->mu);
    return failed;
}

void dq_file_batch_destroy(dq_file_batch_t **pself) {
    dq_file_batch_t *self = pself ? *pself : NULL;
    if (!self) return;
    pthread_mutex_lock(&self->mu);
    self->stop = true;
    pthread_cond_broadcast(&self->work);
    pthread_mutex_unlock(&self->mu);
    for (int i = 0; i < self->n_threads; i++)
        pthread_join(self->threads[i], NULL);
    pthread_cond_destroy(&self->work);
    pthread_cond_destroy(&self->done);
    pthread_mutex_destroy(&self->mu);
    free(self->threads);
    free(self);
    *pself = NULL;
}
