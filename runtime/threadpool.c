/* A small thread pool: jobs are ranges split into chunks; the submitting thread works on its
 * own job too (so nested or concurrent parallel_for calls cannot deadlock) and workers sleep
 * on a condition variable when there is nothing to do (no spinning). */
#include "threadpool.h"

#include <cblas.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct job {
    em_range_fn fn;
    void *ctx;
    int64_t n, chunk;
    int64_t next;      /* next chunk start (under pool lock) */
    int64_t remaining; /* chunks not finished */
    struct job *qnext;
    pthread_cond_t done;
} job;

struct ember_threadpool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    job *head, *tail; /* jobs with chunks left to hand out */
    pthread_t *workers;
    int n_workers;
    int threads; /* workers + caller */
    bool stop;
};

static bool take_chunk(job *j, int64_t *b, int64_t *e) {
    if (j->next >= j->n) return false;
    *b = j->next;
    *e = j->next + j->chunk < j->n ? j->next + j->chunk : j->n;
    j->next = *e;
    return true;
}

static void unlink_if_exhausted(ember_threadpool *p, job *j) {
    if (j->next < j->n) return;
    job **pp = &p->head;
    job *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (*pp == j) {
        *pp = j->qnext;
        if (p->tail == j) p->tail = prev;
    }
}

static void *worker_main(void *arg) {
    ember_threadpool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && !p->head) pthread_cond_wait(&p->work, &p->lock);
        if (p->stop) break;
        job *j = p->head;
        int64_t b, e;
        if (!take_chunk(j, &b, &e)) {
            unlink_if_exhausted(p, j);
            continue;
        }
        unlink_if_exhausted(p, j);
        pthread_mutex_unlock(&p->lock);
        j->fn(j->ctx, b, e);
        pthread_mutex_lock(&p->lock);
        if (--j->remaining == 0) pthread_cond_signal(&j->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Kernels split BLAS work across ember's pool themselves and make single-threaded BLAS calls
 * per tile. OpenBLAS's own threads would oversubscribe the cores, and handing work to them put
 * millisecond stalls into about 1% of small runs: BLAS runs on the calling thread only. */
static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }
void em_blas_single_thread(void) { pthread_once(&g_blas_once, blas_single_thread); }

int em_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

ember_status em_threadpool_new(int threads, ember_threadpool **out, ember_error *err) {
    *out = NULL;
    if (threads <= 0) threads = em_cpu_count();
    if (threads > 256) threads = 256;
    ember_threadpool *p = calloc(1, sizeof *p);
    if (!p) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    p->threads = threads;
    if (threads > 1) {
        p->workers = calloc((size_t)threads - 1, sizeof(pthread_t));
        if (!p->workers) {
            em_threadpool_delete(p);
            return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        }
        for (int i = 0; i < threads - 1; i++) {
            if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) {
                em_threadpool_delete(p);
                return em_fail(err, EMBER_ERR_RUNTIME, "cannot start worker thread %d", i);
            }
            p->n_workers++;
        }
    }
    *out = p;
    return EMBER_OK;
}

void em_threadpool_delete(ember_threadpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int em_threadpool_threads(const ember_threadpool *p) { return p ? p->threads : 1; }

void em_threadpool_run(ember_threadpool *p, int max_threads, int64_t n, int64_t grain,
                       em_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int threads = p ? p->threads : 1;
    if (max_threads > 0 && max_threads < threads) threads = max_threads;
    if (threads <= 1 || n <= grain) {
        fn(ctx, 0, n);
        return;
    }
    /* A few chunks per thread balance uneven work without much overhead. */
    int64_t chunks = (int64_t)threads * 4;
    int64_t chunk = (n + chunks - 1) / chunks;
    if (chunk < grain) chunk = grain;
    job j = {.fn = fn, .ctx = ctx, .n = n, .chunk = chunk};
    j.remaining = (n + chunk - 1) / chunk;
    pthread_cond_init(&j.done, NULL);
    pthread_mutex_lock(&p->lock);
    if (p->tail) p->tail->qnext = &j;
    else p->head = &j;
    p->tail = &j;
    pthread_cond_broadcast(&p->work);
    int64_t b, e;
    while (take_chunk(&j, &b, &e)) {
        unlink_if_exhausted(p, &j);
        pthread_mutex_unlock(&p->lock);
        fn(ctx, b, e);
        pthread_mutex_lock(&p->lock);
        --j.remaining;
    }
    unlink_if_exhausted(p, &j);
    while (j.remaining > 0) pthread_cond_wait(&j.done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&j.done);
}
