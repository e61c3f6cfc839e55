/* Internal error helpers: fill an ember_error (which may be NULL) and return its code. */
#ifndef EMBER_RUNTIME_ERROR_H
#define EMBER_RUNTIME_ERROR_H

#include "ember.h"

#if defined(__GNUC__)
#define EM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EM_PRINTF(a, b)
#endif

/* Set err (if not NULL) to code + formatted message; returns code. */
ember_status em_fail(ember_error *err, ember_status code, const char *fmt, ...) EM_PRINTF(3, 4);

/* Prefix an existing message: "prefix: old message". Returns err->code (or code if err NULL). */
ember_status em_wrap(ember_error *err, ember_status code, const char *fmt, ...) EM_PRINTF(3, 4);

#define EM_TRY(expr)                                                                               \
    do {                                                                                           \
        ember_status em_try_status_ = (expr);                                                      \
        if (em_try_status_ != EMBER_OK) return em_try_status_;                                     \
    } while (0)

#endif
