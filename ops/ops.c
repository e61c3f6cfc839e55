/* The list of operator families. The registry calls each once, at first use. */
#include "ops.h"

#include "heads.h"

/* One family per line. */
/* clang-format off */
const em_ops_family_fn em_op_families[] = {
    em_ops_elementwise,
    em_ops_unary,
    em_ops_softmax,
    em_ops_reduce,
    em_ops_gemm,
    em_ops_conv,
    em_ops_mbconv,
    em_ops_rnn,
    em_ops_pool,
    em_ops_norm,
    em_ops_shape,
    em_ops_gather,
    em_ops_pad_resize,
    em_ops_control,
    em_ops_signal,
    em_ops_quant,
    em_ops_detection,
    em_ops_misc,
    em_ops_sequence,
    em_ops_strings,
    NULL,
};
/* clang-format on */

const em_plugin_init_fn em_builtin_plugins[] = {
    em_heads_plugin_init, /* ai.ember task heads */
    NULL,
};
