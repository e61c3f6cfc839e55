/* misc operators. */
#include "kernel.h"

EM_OPS_FAMILY(misc) {
    *count = 0;
    return NULL;
}
