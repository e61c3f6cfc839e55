#ifndef EMBER_OPS_H
#define EMBER_OPS_H
#include "kernel.h"
typedef const em_op *(*em_ops_family_fn)(size_t *count);
extern const em_ops_family_fn em_op_families[]; /* NULL-terminated */
/* Built-in plugins: kernels written against the public ember_kernel interface, registered
 * through ember_register_op when the registry is initialized (like ember_plugin_init). */
typedef ember_status (*em_plugin_init_fn)(int abi_version, ember_error *err);
extern const em_plugin_init_fn em_builtin_plugins[]; /* NULL-terminated */
EM_OPS_FAMILY(elementwise);
EM_OPS_FAMILY(sequence);
EM_OPS_FAMILY(strings);
EM_OPS_FAMILY(unary);
EM_OPS_FAMILY(softmax);
EM_OPS_FAMILY(reduce);
EM_OPS_FAMILY(gemm);
EM_OPS_FAMILY(conv);
EM_OPS_FAMILY(mbconv);
EM_OPS_FAMILY(rnn);
EM_OPS_FAMILY(pool);
EM_OPS_FAMILY(norm);
EM_OPS_FAMILY(shape);
EM_OPS_FAMILY(gather);
EM_OPS_FAMILY(pad_resize);
EM_OPS_FAMILY(control);
EM_OPS_FAMILY(signal);
EM_OPS_FAMILY(quant);
EM_OPS_FAMILY(detection);
EM_OPS_FAMILY(misc);
#endif
