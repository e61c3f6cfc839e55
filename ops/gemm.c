/* gemm operators. */
#include "kernel.h"

EM_OPS_FAMILY(gemm) {
    *count = 0;
    return NULL;
}
