/* detection operators. */
#include "kernel.h"

EM_OPS_FAMILY(detection) {
    *count = 0;
    return NULL;
}
