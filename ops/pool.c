/* pool operators. */
#include "kernel.h"

EM_OPS_FAMILY(pool) {
    *count = 0;
    return NULL;
}
