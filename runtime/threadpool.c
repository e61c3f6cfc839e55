/* A small thread pool: jobs are ranges split into chunks; the submitting thread works on its
 * own job too (so nested or concurrent parallel_for calls cannot deadlock).
 *
 * Idle workers sleep on a condition variable, but only after polling for new work for a short
 * while (SPIN_NS): the kernels of one run submit jobs microseconds apart, and a sleeping worker
 * takes tens of microseconds to wake, longer than many whole kernels. So while a run is going
 * the workers stay awake, and a few tens of microseconds after it ends they sleep: no spinning
 * when idle. The submitter likewise polls briefly for its last chunks before it sleeps. */
#include "threadpool.h"

#include <cblas.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#ifndef EM_SPIN_NS
#define EM_SPIN_NS 50000 /* how long a thread polls before it sleeps (ns) */
#endif
#define SPIN_NS EM_SPIN_NS

typedef struct job {
    em_range_fn fn;
    void *ctx;
    int64_t n, chunk;
    int64_t next;             /* next chunk start (under pool lock) */
    atomic_llong remaining;   /* chunks not finished */
    atomic_bool waiting;      /* the submitter sleeps on `done` */
    struct job *qnext;
    pthread_cond_t done;
} job;

struct ember_threadpool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    job *head, *tail;    /* jobs with chunks left to hand out */
    atomic_uint epoch;   /* bumped when a job is queued: what polling workers watch */
    int n_sleeping;      /* workers waiting on `work` (under lock) */
    pthread_t *workers;
    int n_workers;
    int threads; /* workers + caller */
    bool stop;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One polling step: a pause instruction for the first steps, then sched_yield, so that on a
 * busy machine a polling thread hands its core to the thread doing the work. */
static void poll_step(int i) {
    if (i < 256) cpu_relax();
    else sched_yield();
}

/* Poll until *word differs from `seen` (true) or SPIN_NS pass (false). */
static bool spin_until_changed(const atomic_uint *word, unsigned seen) {
    int64_t until = now_ns() + SPIN_NS;
    for (int i = 0;; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) != seen) return true;
        poll_step(i);
        if ((i & 15) == 15 && now_ns() > until) return false;
    }
}

/* Poll until *count is 0 (true) or SPIN_NS pass (false). */
static bool spin_until_zero(const atomic_llong *count) {
    int64_t until = now_ns() + SPIN_NS;
    for (int i = 0;; i++) {
        if (atomic_load_explicit(count, memory_order_acquire) == 0) return true;
        poll_step(i);
        if ((i & 15) == 15 && now_ns() > until) return false;
    }
}

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
        while (!p->stop && !p->head) {
            unsigned seen = atomic_load_explicit(&p->epoch, memory_order_acquire);
            pthread_mutex_unlock(&p->lock);
            bool moved = spin_until_changed(&p->epoch, seen);
            pthread_mutex_lock(&p->lock);
            if (moved || p->stop || p->head) continue;
            p->n_sleeping++;
            pthread_cond_wait(&p->work, &p->lock);
            p->n_sleeping--;
        }
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
        /* The submitter may return (and `j` vanish) as soon as remaining reaches 0, unless it
         * sleeps: then it waits for our signal under the lock. */
        pthread_mutex_lock(&p->lock);
        if (atomic_fetch_sub(&j->remaining, 1) == 1 && atomic_load(&j->waiting))
            pthread_cond_signal(&j->done);
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
    atomic_init(&p->epoch, 0);
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
    atomic_fetch_add(&p->epoch, 1); /* polling workers notice at once */
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
    atomic_init(&j.remaining, (n + chunk - 1) / chunk);
    atomic_init(&j.waiting, false);
    pthread_cond_init(&j.done, NULL);
    pthread_mutex_lock(&p->lock);
    if (p->tail) p->tail->qnext = &j;
    else p->head = &j;
    p->tail = &j;
    atomic_fetch_add_explicit(&p->epoch, 1, memory_order_release);
    if (p->n_sleeping > 0) pthread_cond_broadcast(&p->work);
    int64_t b, e;
    while (take_chunk(&j, &b, &e)) {
        unlink_if_exhausted(p, &j);
        pthread_mutex_unlock(&p->lock);
        fn(ctx, b, e);
        pthread_mutex_lock(&p->lock);
        atomic_fetch_sub(&j.remaining, 1);
    }
    unlink_if_exhausted(p, &j);
    pthread_mutex_unlock(&p->lock);
    /* Workers finish the chunks they took: poll a little, then sleep until signalled. */
    if (!spin_until_zero(&j.remaining)) {
        pthread_mutex_lock(&p->lock);
        atomic_store(&j.waiting, true);
        while (atomic_load(&j.remaining) > 0) pthread_cond_wait(&j.done, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
    /* A worker that brought remaining to 0 may still be inside the lock it took to do so;
     * taking the lock once more guarantees it has left before `j` goes out of scope. */
    pthread_mutex_lock(&p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&j.done);
}
