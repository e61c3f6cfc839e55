/* signal operators. */
#include "kernel.h"

EM_OPS_FAMILY(signal) {
    *count = 0;
    return NULL;
}
