/* control operators. */
#include "kernel.h"

EM_OPS_FAMILY(control) {
    *count = 0;
    return NULL;
}
