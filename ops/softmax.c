/* softmax operators. */
#include "kernel.h"

EM_OPS_FAMILY(softmax) {
    *count = 0;
    return NULL;
}
