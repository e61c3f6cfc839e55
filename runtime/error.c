#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ember_status em_fail(ember_error *err, ember_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

ember_status em_wrap(ember_error *err, ember_status code, const char *fmt, ...) {
    if (!err) return code;
    char prefix[EMBER_ERROR_MESSAGE_SIZE];
    char old[EMBER_ERROR_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    old[sizeof old - 1] = '\0';
    if (err->code == EMBER_OK) err->code = code;
    snprintf(err->message, sizeof err->message, "%s: %s", prefix, old);
    return err->code;
}
