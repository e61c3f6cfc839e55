/* reduce operators. */
#include "kernel.h"

EM_OPS_FAMILY(reduce) {
    *count = 0;
    return NULL;
}
