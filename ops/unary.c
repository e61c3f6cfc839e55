/* unary operators. */
#include "kernel.h"

EM_OPS_FAMILY(unary) {
    *count = 0;
    return NULL;
}
