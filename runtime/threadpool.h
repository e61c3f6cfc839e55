#ifndef EMBER_RUNTIME_THREADPOOL_H
#define EMBER_RUNTIME_THREADPOOL_H

#include <pthread.h>

#include "kernel.h"

int em_cpu_count(void);
/* Make BLAS run on its calling thread (once per process; see threadpool.c). */
void em_blas_single_thread(void);
ember_status em_threadpool_new(int threads, ember_threadpool **out, ember_error *err);
void em_threadpool_delete(ember_threadpool *p);
int em_threadpool_threads(const ember_threadpool *p);
/* Run fn over [0, n) on up to max_threads threads (0 = all) of the pool (p may be NULL). */
void em_threadpool_run(ember_threadpool *p, int max_threads, int64_t n, int64_t grain,
                       em_range_fn fn, void *ctx);

#endif
