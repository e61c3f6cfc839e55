/* Batch tiling plan (em_plan_tiling): the longest front of the root graph that can run on a
 * few samples at a time. At batch > 1 a CNN's early activations for the whole batch do not fit
 * in L2, so every layer streams them through memory; run per chunk of samples, consecutive
 * layers find their input in cache. The executor (em_execute) runs nodes [0, tile_cut) once per
 * chunk, gathers the values that cross the cut into whole-batch buffers, then runs the rest once.
 *
 * A node belongs to the front when sample i of each output (index i of dim 0) depends only on
 * sample i of its batched inputs: an allowlist of operators with attribute checks, each batched
 * input being a graph input or an output of an earlier front node, every other input a
 * constant that cannot mix samples (lower rank, or dim 0 of 1). The front then ends at the first
 * node whose weights outweigh its activations per sample by more than TILE_WEIGHT_RATIO: such a
 * node run per chunk rereads its weights per chunk for little activation traffic saved
 * (ResNet-18's layer3 and layer4, MobileNetV2's last 1x1 convolutions). */
#include <stdlib.h>
#include <string.h>

#include "session.h"

/* Weights reread from L2 once per chunk cost far less than activations streamed from memory.
 * Measured at batch 8, 1 thread: ratios 1 to 4 equal on MobileNetV2 and ResNet-18; SqueezeNet
 * 1.1 6% faster at 4 than at 1 (its 13x13 fire modules join the front); 8 slowed ResNet-18 by
 * 8% and no limit by 15% (its 7x7 and 14x14 layers one sample at a time). */
#define TILE_WEIGHT_RATIO 4

typedef enum { ROLE_ABSENT, ROLE_BATCHED, ROLE_CONST, ROLE_OTHER } input_role;

typedef struct tiling_ctx {
    const em_graph *g;
    const bool *batched; /* per value: dim 0 is the batch */
} tiling_ctx;

static input_role role_of(const tiling_ctx *c, const em_node *n, int k) {
    if (k >= n->n_inputs || n->inputs[k] < 0) return ROLE_ABSENT;
    int v = n->inputs[k];
    if (c->batched[v]) return ROLE_BATCHED;
    if (c->g->values[v].constant) return ROLE_CONST;
    return ROLE_OTHER;
}

static bool is_onnx(const em_node *n, const char *op) {
    return n->domain[0] == '\0' && strcmp(n->op_type, op) == 0;
}

static bool is_ember(const em_node *n, const char *op) {
    return strcmp(n->domain, "ai.ember") == 0 && strcmp(n->op_type, op) == 0;
}

static bool in_list(const char *op, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (strcmp(op, list[i]) == 0) return true;
    return false;
}

static const em_tensor *info_of(const tiling_ctx *c, int v) { return &c->g->values[v].info; }

/* Static rank of input k (batched or constant), -1 if unknown. */
static int rank_of(const tiling_ctx *c, const em_node *n, int k) {
    int v = n->inputs[k];
    const em_tensor *t = c->g->values[v].constant ? c->g->values[v].constant : info_of(c, v);
    return t->rank;
}

/* Inputs from `first` on are constants or absent. */
static bool rest_constant(const tiling_ctx *c, const em_node *n, int first) {
    for (int k = first; k < n->n_inputs; k++) {
        input_role r = role_of(c, n, k);
        if (r != ROLE_ABSENT && r != ROLE_CONST) return false;
    }
    return true;
}

/* Outputs from `first` on are omitted. */
static bool no_outputs_from(const em_node *n, int first) {
    for (int k = first; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0) return false;
    return true;
}

/* A constant that broadcasts against an output of rank `out_rank` without mixing samples. */
static bool const_keeps_samples(const em_tensor *t, int out_rank) {
    return t->rank < out_rank || (t->rank >= 1 && t->dims[0] == 1);
}

/* axis normalized against rank (negative counts from the end); -1 if out of range. */
static int norm_axis(int64_t axis, int rank) {
    if (rank < 0) return -1;
    int64_t a = axis < 0 ? axis + rank : axis;
    return a >= 0 && a < (rank > 0 ? rank : 1) ? (int)a : -1;
}

static bool elementwise_ok(const tiling_ctx *c, const em_node *n, int out_rank) {
    bool any_batched = false;
    for (int k = 0; k < n->n_inputs; k++) {
        input_role r = role_of(c, n, k);
        if (r == ROLE_ABSENT || r == ROLE_OTHER) return false;
        if (r == ROLE_BATCHED) {
            if (rank_of(c, n, k) != out_rank) return false;
            any_batched = true;
        } else if (!const_keeps_samples(c->g->values[n->inputs[k]].constant, out_rank)) {
            return false;
        }
    }
    return any_batched;
}

/* Operators whose output 0 keeps input 0's samples apart, with inputs 1.. constants. */
static const char *const PER_SAMPLE[] = {
    "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "Celu", "Softplus", "Softsign", "Exp", "Log", "Abs", "Neg", "Sqrt", "Reciprocal", "Erf",
    "Gelu", "Mish", "ThresholdedRelu", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos",
    "Identity", "LRN", "InstanceNormalization", "Conv", "ConvTranspose", "AveragePool",
    "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", NULL};
static const char *const ELEMENTWISE[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum",
                                          "Mean", "Pow", "PRelu", NULL};

/* Whether sample i of every output of n depends only on sample i of its batched inputs. */
static bool separable(const tiling_ctx *c, const em_node *n) {
    if (!n->op_type || !n->op || n->n_inputs != n->n_explicit_inputs || n->n_inputs < 1 ||
        n->n_outputs < 1 || n->outputs[0] < 0)
        return false;
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].g || n->attrs[a].graphs) return false;
    const int out_rank = info_of(c, n->outputs[0])->rank;
    if (out_rank < 1) return false;
    const bool x_batched = role_of(c, n, 0) == ROLE_BATCHED;
    const int x_rank = x_batched ? rank_of(c, n, 0) : -1;
    if (is_ember(n, "FusedConv")) { /* X, W, B, then an optional residual Z of X's samples */
        input_role z = role_of(c, n, 3);
        bool z_ok = z == ROLE_ABSENT || (z == ROLE_BATCHED && rank_of(c, n, 3) == out_rank);
        return x_batched && role_of(c, n, 1) == ROLE_CONST && rest_constant(c, n, 4) && z_ok &&
               (role_of(c, n, 2) == ROLE_ABSENT || role_of(c, n, 2) == ROLE_CONST) &&
               no_outputs_from(n, 1);
    }
    if (is_ember(n, "FusedMBConv")) { /* X, six constants (or absent), optional Z */
        input_role z = role_of(c, n, 7);
        bool z_ok = z == ROLE_ABSENT || (z == ROLE_BATCHED && rank_of(c, n, 7) == out_rank);
        for (int k = 1; k < 7; k++)
            if (role_of(c, n, k) != ROLE_ABSENT && role_of(c, n, k) != ROLE_CONST) return false;
        return x_batched && z_ok && rest_constant(c, n, 8) && no_outputs_from(n, 1);
    }
    if (is_ember(n, "FusedGemm") || is_onnx(n, "Gemm")) {
        const em_tensor *cc = role_of(c, n, 2) == ROLE_CONST
                                  ? c->g->values[n->inputs[2]].constant : NULL;
        return x_batched && x_rank == 2 && em_attr_int(n, "transA", 0) == 0 &&
               role_of(c, n, 1) == ROLE_CONST && rest_constant(c, n, 2) &&
               (!cc || cc->rank <= 1 || cc->dims[0] == 1);
    }
    if (is_ember(n, "FusedMatMul") || is_onnx(n, "MatMul"))
        return x_batched && x_rank >= 2 && role_of(c, n, 1) == ROLE_CONST &&
               rank_of(c, n, 1) == 2 && rest_constant(c, n, 2);
    if (n->domain[0] != '\0') return false;
    const char *op = n->op_type;
    if (in_list(op, ELEMENTWISE)) return no_outputs_from(n, 1) && elementwise_ok(c, n, out_rank);
    if (strcmp(op, "Concat") == 0) {
        for (int k = 0; k < n->n_inputs; k++)
            if (role_of(c, n, k) != ROLE_BATCHED) return false;
        return norm_axis(em_attr_int(n, "axis", 0), out_rank) >= 1;
    }
    if (!x_batched || !rest_constant(c, n, 1)) return false;
    if (in_list(op, PER_SAMPLE)) return no_outputs_from(n, 1);
    if (strcmp(op, "MaxPool") == 0) /* its Indices count across the batch */
        return no_outputs_from(n, 1);
    if (strcmp(op, "BatchNormalization") == 0)
        return no_outputs_from(n, 1) &&
               !(em_onnx_op_version(op, n->opset) >= 14 && em_attr_int(n, "training_mode", 0));
    if (strcmp(op, "Dropout") == 0) {
        /* Training mode draws a mask from one random stream over the whole batch. */
        const em_tensor *mode = role_of(c, n, 2) == ROLE_CONST
                                    ? c->g->values[n->inputs[2]].constant : NULL;
        if (role_of(c, n, 2) != ROLE_ABSENT && (!mode || em_numel(mode) != 1 || !mode->data ||
                                                em_get_i64(mode, 0) != 0))
            return false;
        return no_outputs_from(n, 1);
    }
    if (strcmp(op, "Cast") == 0)
        return em_attr_int(n, "to", 0) != EMBER_STRING && no_outputs_from(n, 1);
    if (strcmp(op, "Flatten") == 0) { /* axis 1 only: a larger one folds samples into dim 0 */
        int64_t axis = em_attr_int(n, "axis", 1);
        return x_rank >= 1 && (axis < 0 ? axis + x_rank : axis) == 1;
    }
    if (strcmp(op, "Softmax") == 0 || strcmp(op, "LogSoftmax") == 0) {
        bool old = em_onnx_op_version(op, n->opset) < 13; /* flattens from axis */
        int a = norm_axis(em_attr_int(n, "axis", old ? 1 : -1), x_rank);
        return a >= 1;
    }
    if (strcmp(op, "LayerNormalization") == 0)
        return norm_axis(em_attr_int(n, "axis", -1), x_rank) >= 1;
    return false;
}

/* Bytes of one sample of a batched value (dims after the first), or -1 if not static. */
static int64_t sample_bytes(const em_tensor *t) {
    size_t es = em_dtype_size(t->dtype);
    if (t->rank < 1 || es == 0) return -1;
    int64_t n = em_shape_numel(t->dims + 1, t->rank - 1);
    if (n < 0 || n > INT64_MAX / 64) return -1;
    return n * (int64_t)es;
}

/* Weights and per-sample activation bytes of a front node; false if a shape is not static. */
static bool node_cost(const tiling_ctx *c, const em_node *n, int64_t *weights, int64_t *acts,
                      int64_t *largest) {
    *weights = *acts = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        input_role r = role_of(c, n, k);
        if (r == ROLE_CONST) {
            *weights += (int64_t)em_nbytes(c->g->values[n->inputs[k]].constant);
        } else if (r == ROLE_BATCHED) {
            int64_t b = sample_bytes(info_of(c, n->inputs[k]));
            if (b < 0) return false;
            *acts += b;
            if (b > *largest) *largest = b;
        }
    }
    for (int k = 0; k < n->n_outputs; k++) {
        if (n->outputs[k] < 0) continue;
        int64_t b = sample_bytes(info_of(c, n->outputs[k]));
        if (b < 0) return false;
        *acts += b;
        if (b > *largest) *largest = b;
    }
    return true;
}

static void clear(em_plan *p) {
    free(p->tile_inputs);
    free(p->tile_fixed);
    free(p->tile_cross);
    p->tile_inputs = p->tile_fixed = p->tile_cross = NULL;
    p->n_tile_inputs = p->n_tile_fixed = p->n_tile_cross = 0;
    p->tile_cut = 0;
    p->tile_sample_bytes = 0;
}

ember_status em_plan_tiling(const em_graph *g, em_plan *plan, ember_error *err) {
    clear(plan);
    if (g->n_nodes == 0) return EMBER_OK;
    size_t nv = (size_t)g->n_values + 1;
    bool *batched = calloc(nv, sizeof *batched);
    bool *read = calloc(nv, sizeof *read); /* read by a front node */
    plan->tile_inputs = malloc(sizeof(int) * nv);
    plan->tile_fixed = malloc(sizeof(int) * nv);
    plan->tile_cross = malloc(sizeof(int) * nv);
    if (!batched || !read || !plan->tile_inputs || !plan->tile_fixed || !plan->tile_cross) {
        free(batched);
        free(read);
        clear(plan);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        if (!g->values[v].constant && g->values[v].info.kind == EMBER_KIND_TENSOR)
            batched[v] = true;
    }
    tiling_ctx c = {g, batched};
    int cut = 0;
    int64_t largest = 0;
    for (; cut < g->n_nodes; cut++) {
        const em_node *n = &g->nodes[cut];
        int64_t weights, acts, node_largest = largest;
        if (!separable(&c, n) || !node_cost(&c, n, &weights, &acts, &node_largest) ||
            weights / TILE_WEIGHT_RATIO > acts)
            break;
        largest = node_largest;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0) read[n->inputs[k]] = true;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0) batched[n->outputs[k]] = true;
    }
    if (cut > 0 && largest > 0) {
        plan->tile_cut = cut;
        plan->tile_sample_bytes = largest;
        for (int i = 0; i < g->n_inputs; i++) {
            int v = g->inputs[i];
            if (!read[v]) continue;
            if (batched[v]) plan->tile_inputs[plan->n_tile_inputs++] = v;
            else plan->tile_fixed[plan->n_tile_fixed++] = v; /* an overridable initializer */
        }
        for (int i = 0; i < cut; i++) {
            const em_node *n = &g->nodes[i];
            for (int k = 0; k < n->n_outputs; k++) {
                int v = n->outputs[k];
                if (v >= 0 && plan->last_use[v] >= cut) plan->tile_cross[plan->n_tile_cross++] = v;
            }
        }
        if (plan->n_tile_inputs == 0) clear(plan); /* nothing carries the batch */
    }
    free(batched);
    free(read);
    return EMBER_OK;
}
