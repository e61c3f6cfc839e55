/* heads operators. */
#include "kernel.h"

EM_OPS_FAMILY(heads) {
    *count = 0;
    return NULL;
}
