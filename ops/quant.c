/* quant operators. */
#include "kernel.h"

EM_OPS_FAMILY(quant) {
    *count = 0;
    return NULL;
}
