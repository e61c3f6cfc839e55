/* Sequences and optionals: SequenceEmpty, SequenceConstruct, SequenceInsert, SequenceErase,
 * SequenceAt, SequenceLength, SplitToSequence, ConcatFromSequence, SequenceMap, Optional,
 * OptionalHasElement, OptionalGetElement.
 *
 * A sequence or optional value is an em_tensor of kind EMBER_KIND_SEQUENCE / _OPTIONAL (see
 * runtime/tensor.h). These kernels are EM_OP_ANY_KIND: such outputs reach `run` unallocated and
 * run gives each a value it owns. Inputs are never modified: SequenceInsert and SequenceErase
 * return a new sequence (copies of the tensors), since the input may be read again later. */
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

static const char *desc(const em_node *node, char *buf, size_t size) {
    return em_node_desc(node, buf, size);
}

static ember_status expect_kind(const em_node *node, const em_tensor *t, int input,
                                ember_value_kind kind, ember_error *err) {
    if (!t || t->kind == kind) return EMBER_OK;
    char buf[160];
    return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input %d is a %s, a %s is expected",
                   desc(node, buf, sizeof buf), input, em_kind_name(t->kind), em_kind_name(kind));
}

/* A tensor whose element type must match the sequence's (when both are known). */
static ember_status check_elem_type(const em_node *node, const em_tensor *seq, const em_tensor *t,
                                    ember_error *err) {
    if (seq->dtype == EMBER_UNDEFINED || t->dtype == EMBER_UNDEFINED || seq->dtype == t->dtype)
        return EMBER_OK;
    char buf[160];
    return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: a sequence of %s cannot hold a %s tensor",
                   desc(node, buf, sizeof buf), em_dtype_name(seq->dtype), em_dtype_name(t->dtype));
}

/* The `position` input (int32 or int64 scalar) normalized into [0, limit): negative values
 * count from the end of a sequence of length n. `limit` is n (At, Erase) or n + 1 (Insert). */
static ember_status position_of(const em_node *node, const em_tensor *p, int64_t n, int64_t limit,
                                int64_t *out, ember_error *err) {
    char buf[160];
    if (p->dtype != EMBER_INT32 && p->dtype != EMBER_INT64)
        return em_unsupported_type(node, 1, p->dtype, err);
    if (p->rank >= 0 && em_numel(p) != 1)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: position must be a scalar",
                       desc(node, buf, sizeof buf));
    if (!p->data) return EMBER_OK;
    int64_t pos = em_get_i64(p, 0);
    int64_t norm = pos < 0 ? pos + n : pos;
    if (norm < 0 || norm >= limit)
        return em_fail(err, EMBER_ERR_RUNTIME,
                       "%s: position %lld is out of range for a sequence of %lld tensors",
                       desc(node, buf, sizeof buf), (long long)pos, (long long)n);
    *out = norm;
    return EMBER_OK;
}

/* Heap copy of `src` with only items [0, n) other than `skip` (-1: none). */
static ember_status copy_seq(const em_tensor *src, int64_t skip, em_tensor **out,
                             ember_error *err) {
    *out = em_seq_new(src->dtype, err);
    if (!*out) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < em_seq_length(src); i++) {
        if (i == skip) continue;
        em_tensor *c = em_tensor_clone(em_seq_at(src, i), err);
        ember_status st = c ? em_seq_insert(*out, em_seq_length(*out), c, err)
                            : (err ? err->code : EMBER_ERR_OUT_OF_MEMORY);
        if (st != EMBER_OK) {
            em_tensor_free(*out);
            *out = NULL;
            return st;
        }
    }
    return EMBER_OK;
}

/* Move heap value v into output slot o. */
static void give(em_tensor *o, em_tensor *v) {
    *o = *v;
    free(v);
}

/* ---------------------------------------------------------------------------------------------
 * SequenceEmpty, SequenceConstruct, SequenceLength
 * ------------------------------------------------------------------------------------------- */

static ember_status seq_empty_infer(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, ember_error *err) {
    (void)state;
    (void)in;
    int64_t dt = em_attr_int(node, "dtype", EMBER_FLOAT);
    if (em_dtype_size((ember_dtype)dt) == 0) {
        char buf[160];
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: dtype %lld is not supported",
                       desc(node, buf, sizeof buf), (long long)dt);
    }
    em_value_set_type(&out[0], EMBER_KIND_SEQUENCE, EMBER_KIND_TENSOR, (ember_dtype)dt);
    return EMBER_OK;
}

static ember_status seq_empty_run(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, em_exec *ex, ember_error *err) {
    (void)node, (void)state, (void)in, (void)ex;
    em_tensor *s = em_seq_new(out[0].dtype, err);
    if (!s) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    give(&out[0], s);
    return EMBER_OK;
}

static ember_status seq_construct_infer(const em_node *node, void *state, em_tensor *const *in,
                                        em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    if (node->n_inputs < 1 || !in[0])
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: needs at least one input",
                       desc(node, buf, sizeof buf));
    for (int k = 0; k < node->n_inputs; k++) {
        if (!in[k])
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input %d is missing",
                           desc(node, buf, sizeof buf), k);
        EM_TRY(expect_kind(node, in[k], k, EMBER_KIND_TENSOR, err));
        if (in[k]->dtype != in[0]->dtype)
            return em_fail(err, EMBER_ERR_INVALID_MODEL,
                           "%s: input %d is %s, input 0 %s; a sequence holds one type",
                           desc(node, buf, sizeof buf), k, em_dtype_name(in[k]->dtype),
                           em_dtype_name(in[0]->dtype));
    }
    em_value_set_type(&out[0], EMBER_KIND_SEQUENCE, EMBER_KIND_TENSOR, in[0]->dtype);
    return EMBER_OK;
}

static ember_status seq_construct_run(const em_node *node, void *state, em_tensor *const *in,
                                      em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    em_tensor *s = em_seq_new(in[0]->dtype, err);
    if (!s) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    for (int k = 0; k < node->n_inputs; k++) {
        em_tensor *c = em_tensor_clone(in[k], err);
        ember_status st =
            c ? em_seq_insert(s, k, c, err) : (err ? err->code : EMBER_ERR_OUT_OF_MEMORY);
        if (st != EMBER_OK) {
            em_tensor_free(s);
            return st;
        }
    }
    give(&out[0], s);
    return EMBER_OK;
}

static ember_status seq_length_infer(const em_node *node, void *state, em_tensor *const *in,
                                     em_tensor *out, ember_error *err) {
    (void)state;
    EM_TRY(expect_kind(node, in[0], 0, EMBER_KIND_SEQUENCE, err));
    em_tensor_set_shape(&out[0], EMBER_INT64, NULL, 0);
    return EMBER_OK;
}

static ember_status seq_length_run(const em_node *node, void *state, em_tensor *const *in,
                                   em_tensor *out, em_exec *ex, ember_error *err) {
    (void)node, (void)state, (void)ex, (void)err;
    *(int64_t *)out[0].data = em_seq_length(in[0]);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * SequenceInsert, SequenceErase, SequenceAt
 * ------------------------------------------------------------------------------------------- */

static ember_status seq_insert_infer(const em_node *node, void *state, em_tensor *const *in,
                                     em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    if (node->n_inputs < 2 || !in[0] || !in[1])
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input_sequence and tensor are required",
                       desc(node, buf, sizeof buf));
    EM_TRY(expect_kind(node, in[0], 0, EMBER_KIND_SEQUENCE, err));
    EM_TRY(expect_kind(node, in[1], 1, EMBER_KIND_TENSOR, err));
    EM_TRY(check_elem_type(node, in[0], in[1], err));
    if (node->n_inputs > 2 && in[2]) {
        int64_t pos;
        EM_TRY(expect_kind(node, in[2], 2, EMBER_KIND_TENSOR, err));
        if (in[0]->data) {
            int64_t n = em_seq_length(in[0]);
            EM_TRY(position_of(node, in[2], n, n + 1, &pos, err));
        } else if (in[2]->dtype != EMBER_INT32 && in[2]->dtype != EMBER_INT64) {
            return em_unsupported_type(node, 2, in[2]->dtype, err);
        }
    }
    ember_dtype dt = in[0]->dtype != EMBER_UNDEFINED ? in[0]->dtype : in[1]->dtype;
    em_value_set_type(&out[0], EMBER_KIND_SEQUENCE, EMBER_KIND_TENSOR, dt);
    return EMBER_OK;
}

static ember_status seq_insert_run(const em_node *node, void *state, em_tensor *const *in,
                                   em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    int64_t n = em_seq_length(in[0]), pos = n;
    if (node->n_inputs > 2 && in[2]) EM_TRY(position_of(node, in[2], n, n + 1, &pos, err));
    em_tensor *s;
    EM_TRY(copy_seq(in[0], -1, &s, err));
    s->dtype = out[0].dtype;
    em_tensor *c = em_tensor_clone(in[1], err);
    ember_status st =
        c ? em_seq_insert(s, pos, c, err) : (err ? err->code : EMBER_ERR_OUT_OF_MEMORY);
    if (st != EMBER_OK) {
        em_tensor_free(s);
        return st;
    }
    give(&out[0], s);
    return EMBER_OK;
}

static ember_status seq_erase_infer(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, ember_error *err) {
    (void)state;
    EM_TRY(expect_kind(node, in[0], 0, EMBER_KIND_SEQUENCE, err));
    if (node->n_inputs > 1 && in[1]) {
        EM_TRY(expect_kind(node, in[1], 1, EMBER_KIND_TENSOR, err));
        int64_t pos, n = em_seq_length(in[0]);
        if (in[0]->data) EM_TRY(position_of(node, in[1], n, n, &pos, err));
    }
    em_value_set_type(&out[0], EMBER_KIND_SEQUENCE, EMBER_KIND_TENSOR, in[0]->dtype);
    return EMBER_OK;
}

static ember_status seq_erase_run(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    int64_t n = em_seq_length(in[0]), pos = n - 1;
    char buf[160];
    if (node->n_inputs > 1 && in[1])
        EM_TRY(position_of(node, in[1], n, n, &pos, err));
    else if (n == 0)
        return em_fail(err, EMBER_ERR_RUNTIME, "%s: cannot erase from an empty sequence",
                       desc(node, buf, sizeof buf));
    em_tensor *s;
    EM_TRY(copy_seq(in[0], pos, &s, err));
    give(&out[0], s);
    return EMBER_OK;
}

static ember_status seq_at_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    if (node->n_inputs < 2 || !in[0] || !in[1])
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input_sequence and position are required",
                       desc(node, buf, sizeof buf));
    EM_TRY(expect_kind(node, in[0], 0, EMBER_KIND_SEQUENCE, err));
    EM_TRY(expect_kind(node, in[1], 1, EMBER_KIND_TENSOR, err));
    int64_t pos = -1, n = em_seq_length(in[0]);
    if (in[0]->data) EM_TRY(position_of(node, in[1], n, n, &pos, err));
    if (pos < 0 || !in[1]->data) {
        if (in[1]->dtype != EMBER_INT32 && in[1]->dtype != EMBER_INT64)
            return em_unsupported_type(node, 1, in[1]->dtype, err);
        em_tensor_set_shape(&out[0], in[0]->dtype, NULL, -1); /* known when running */
        return EMBER_OK;
    }
    const em_tensor *item = em_seq_at(in[0], pos);
    em_tensor_set_shape(&out[0], item->dtype, item->dims, item->rank);
    return EMBER_OK;
}

static ember_status seq_at_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    int64_t pos, n = em_seq_length(in[0]);
    EM_TRY(position_of(node, in[1], n, n, &pos, err));
    const em_tensor *item = em_seq_at(in[0], pos);
    size_t bytes = em_nbytes(item);
    if (bytes) memcpy(out[0].data, item->data, bytes);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * SplitToSequence
 * ------------------------------------------------------------------------------------------- */

/* Chunk lengths along the axis: from `split` (scalar: equal chunks, the last one smaller;
 * 1-D: the lengths, which must add up) or, without it, chunks of 1. */
static ember_status split_lengths(const em_node *node, const em_tensor *x, int axis,
                                  const em_tensor *split, int64_t **lens, int64_t *count,
                                  ember_error *err) {
    char buf[160];
    int64_t dim = x->dims[axis];
    *lens = NULL;
    *count = 0;
    int64_t n;
    if (!split) {
        n = dim;
    } else if (split->rank == 0) {
        int64_t size = em_get_i64(split, 0);
        if (size <= 0)
            return em_fail(err, EMBER_ERR_RUNTIME, "%s: split %lld must be positive",
                           desc(node, buf, sizeof buf), (long long)size);
        n = dim / size + (dim % size ? 1 : 0);
    } else {
        n = em_numel(split);
    }
    *lens = malloc(sizeof **lens * (size_t)(n + 1));
    if (!*lens) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!split)
            (*lens)[i] = 1;
        else if (split->rank == 0) {
            int64_t size = em_get_i64(split, 0);
            (*lens)[i] = i == n - 1 && dim % size ? dim % size : size;
        } else {
            (*lens)[i] = em_get_i64(split, i);
        }
        if ((*lens)[i] < 0 || (*lens)[i] > dim - total) {
            free(*lens);
            *lens = NULL;
            return em_fail(err, EMBER_ERR_RUNTIME,
                           "%s: split lengths do not add up to the axis length %lld",
                           desc(node, buf, sizeof buf), (long long)dim);
        }
        total += (*lens)[i];
    }
    if (total != dim) {
        free(*lens);
        *lens = NULL;
        return em_fail(err, EMBER_ERR_RUNTIME,
                       "%s: split lengths add up to %lld, the axis has %lld",
                       desc(node, buf, sizeof buf), (long long)total, (long long)dim);
    }
    *count = n;
    return EMBER_OK;
}

static ember_status split_seq_infer(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    EM_TRY(expect_kind(node, in[0], 0, EMBER_KIND_TENSOR, err));
    const em_tensor *split = node->n_inputs > 1 ? in[1] : NULL;
    if (split) {
        EM_TRY(expect_kind(node, split, 1, EMBER_KIND_TENSOR, err));
        if (split->dtype != EMBER_INT32 && split->dtype != EMBER_INT64)
            return em_unsupported_type(node, 1, split->dtype, err);
        if (split->rank > 1)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: split must be a scalar or 1-D",
                           desc(node, buf, sizeof buf));
    }
    if (em_dtype_size(in[0]->dtype) == 0) return em_unsupported_type(node, 0, in[0]->dtype, err);
    if (in[0]->rank == 0)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: cannot split a scalar",
                       desc(node, buf, sizeof buf));
    if (in[0]->rank > 0) {
        int axis;
        EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 0), in[0]->rank, &axis, err));
    }
    em_value_set_type(&out[0], EMBER_KIND_SEQUENCE, EMBER_KIND_TENSOR, in[0]->dtype);
    return EMBER_OK;
}

static ember_status split_seq_run(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    const em_tensor *x = in[0];
    const em_tensor *split = node->n_inputs > 1 ? in[1] : NULL;
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 0), x->rank, &axis, err));
    bool keepdims = em_attr_int(node, "keepdims", 1) != 0 || split; /* ignored with split */
    int64_t *lens, n;
    EM_TRY(split_lengths(node, x, axis, split, &lens, &n, err));
    em_tensor *s = em_seq_new(x->dtype, err);
    ember_status st = s ? EMBER_OK : (err ? err->code : EMBER_ERR_OUT_OF_MEMORY);
    size_t es = em_dtype_size(x->dtype);
    int64_t outer = em_shape_numel(x->dims, axis);
    int64_t inner = em_shape_numel(x->dims + axis + 1, x->rank - axis - 1);
    int64_t dim = x->dims[axis], start = 0;
    for (int64_t i = 0; st == EMBER_OK && i < n; i++) {
        int64_t dims[EM_MAX_RANK];
        int rank = 0;
        for (int d = 0; d < x->rank; d++) {
            if (d == axis && !keepdims) continue;
            dims[rank++] = d == axis ? lens[i] : x->dims[d];
        }
        em_tensor *c = em_tensor_new(x->dtype, dims, rank, err);
        if (!c) {
            st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
            break;
        }
        size_t row = (size_t)(lens[i] * inner) * es;
        for (int64_t o = 0; o < outer && row; o++)
            memcpy((char *)c->data + (size_t)o * row,
                   (const char *)x->data + (size_t)((o * dim + start) * inner) * es, row);
        start += lens[i];
        st = em_seq_insert(s, i, c, err);
    }
    free(lens);
    if (st != EMBER_OK) {
        em_tensor_free(s);
        return st;
    }
    give(&out[0], s);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * ConcatFromSequence
 * ------------------------------------------------------------------------------------------- */

/* Output shape of concatenating (or, with new_axis, stacking) the items of seq. */
static ember_status concat_seq_shape(const em_node *node, const em_tensor *seq, int *axis_out,
                                     em_tensor *shape, ember_error *err) {
    char buf[160], a[96], b[96];
    const em_attr *axis_attr = em_node_attr(node, "axis");
    if (!axis_attr)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: attribute axis is required",
                       desc(node, buf, sizeof buf));
    bool new_axis = em_attr_int(node, "new_axis", 0) != 0;
    int64_t n = em_seq_length(seq);
    if (n == 0)
        return em_fail(err, EMBER_ERR_RUNTIME, "%s: cannot concatenate an empty sequence",
                       desc(node, buf, sizeof buf));
    const em_tensor *first = em_seq_at(seq, 0);
    int out_rank = first->rank + (new_axis ? 1 : 0);
    if (out_rank > EM_MAX_RANK || out_rank == 0)
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: cannot concatenate tensors of rank %d",
                       desc(node, buf, sizeof buf), first->rank);
    int axis;
    EM_TRY(em_norm_axis(node, axis_attr->i, out_rank, &axis, err));
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        const em_tensor *t = em_seq_at(seq, i);
        bool ok = t->rank == first->rank && t->dtype == first->dtype;
        for (int d = 0; ok && d < t->rank; d++)
            if (d != axis || new_axis) ok = t->dims[d] == first->dims[d];
        if (!ok)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: tensor %lld (%s) does not fit tensor 0 (%s)",
                           desc(node, buf, sizeof buf), (long long)i, em_shape_str(t, a, sizeof a),
                           em_shape_str(first, b, sizeof b));
        total += new_axis ? 1 : t->dims[axis];
    }
    int64_t dims[EM_MAX_RANK];
    for (int d = 0, j = 0; d < out_rank; d++) {
        if (d == axis)
            dims[d] = total;
        else
            dims[d] = first->dims[j];
        if (d != axis || !new_axis) j++;
    }
    em_tensor_set_shape(shape, first->dtype, dims, out_rank);
    *axis_out = axis;
    return EMBER_OK;
}

static ember_status concat_seq_infer(const em_node *node, void *state, em_tensor *const *in,
                                     em_tensor *out, ember_error *err) {
    (void)state;
    EM_TRY(expect_kind(node, in[0], 0, EMBER_KIND_SEQUENCE, err));
    if (!in[0]->data) {
        if (!em_node_attr(node, "axis")) {
            char buf[160];
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: attribute axis is required",
                           desc(node, buf, sizeof buf));
        }
        em_tensor_set_shape(&out[0], in[0]->dtype, NULL, -1);
        return EMBER_OK;
    }
    int axis;
    return concat_seq_shape(node, in[0], &axis, &out[0], err);
}

static ember_status concat_seq_run(const em_node *node, void *state, em_tensor *const *in,
                                   em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    em_tensor shape = {0};
    int axis;
    EM_TRY(concat_seq_shape(node, in[0], &axis, &shape, err));
    size_t es = em_dtype_size(shape.dtype);
    int64_t outer = em_shape_numel(shape.dims, axis);
    int64_t out_row = em_shape_numel(shape.dims + axis, shape.rank - axis);
    int64_t offset = 0; /* elements into each output row */
    for (int64_t i = 0; i < em_seq_length(in[0]); i++) {
        const em_tensor *t = em_seq_at(in[0], i);
        /* Each item fills `row` elements of every output row: its dims from `axis` on (with
         * new_axis the item has no dim at `axis`, and the same product is its slab). */
        int64_t row = em_shape_numel(t->dims + axis, t->rank - axis);
        for (int64_t o = 0; o < outer && row; o++)
            memcpy((char *)out[0].data + (size_t)(o * out_row + offset) * es,
                   (const char *)t->data + (size_t)(o * row) * es, (size_t)row * es);
        offset += row;
    }
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Optional, OptionalHasElement, OptionalGetElement
 * ------------------------------------------------------------------------------------------- */

static ember_status optional_infer(const em_node *node, void *state, em_tensor *const *in,
                                   em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    const em_tensor *input = node->n_inputs > 0 ? in[0] : NULL;
    const em_attr *type = em_node_attr(node, "type");
    if (input) {
        if (input->kind == EMBER_KIND_OPTIONAL)
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: an optional cannot hold an optional",
                           desc(node, buf, sizeof buf));
        em_value_set_type(&out[0], EMBER_KIND_OPTIONAL, input->kind, input->dtype);
        return EMBER_OK;
    }
    if (!type || type->type != EM_ATTR_TYPE_PROTO || !type->t ||
        type->t->kind == EMBER_KIND_OPTIONAL)
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: without an input, attribute type (a tensor or sequence type) is "
                       "required",
                       desc(node, buf, sizeof buf));
    em_value_set_type(&out[0], EMBER_KIND_OPTIONAL, type->t->kind, type->t->dtype);
    return EMBER_OK;
}

static ember_status optional_run(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    const em_tensor *input = node->n_inputs > 0 ? in[0] : NULL;
    em_tensor *v = NULL;
    if (input && !(v = em_tensor_clone(input, err)))
        return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    em_tensor *o = em_optional_new(out[0].elem_kind, out[0].dtype, v, err);
    if (!o) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    give(&out[0], o);
    return EMBER_OK;
}

/* Version 15 takes an optional; 18 also a tensor or sequence (always present) or no input. */
static bool optional_v18(const em_node *node) {
    return em_onnx_op_version(node->op_type, node->opset) >= 18;
}

static ember_status check_optional_input(const em_node *node, const em_tensor *t, bool required,
                                         ember_error *err) {
    char buf[160];
    if (!t) {
        if (!required && optional_v18(node)) return EMBER_OK;
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input is required",
                       desc(node, buf, sizeof buf));
    }
    if (t->rank >= 0 && t->kind != EMBER_KIND_OPTIONAL && !optional_v18(node))
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: input is a %s; version 15 takes an "
                       "optional",
                       desc(node, buf, sizeof buf), em_kind_name(t->kind));
    return EMBER_OK;
}

static ember_status has_element_infer(const em_node *node, void *state, em_tensor *const *in,
                                      em_tensor *out, ember_error *err) {
    (void)state;
    EM_TRY(check_optional_input(node, node->n_inputs > 0 ? in[0] : NULL, false, err));
    em_tensor_set_shape(&out[0], EMBER_BOOL, NULL, 0);
    return EMBER_OK;
}

static ember_status has_element_run(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex, (void)err;
    const em_tensor *t = node->n_inputs > 0 ? in[0] : NULL;
    bool has = t && (t->kind != EMBER_KIND_OPTIONAL || t->data != NULL);
    *(bool *)out[0].data = has;
    return EMBER_OK;
}

static ember_status get_element_infer(const em_node *node, void *state, em_tensor *const *in,
                                      em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *t = in[0];
    EM_TRY(check_optional_input(node, t, true, err));
    if (t->kind == EMBER_KIND_SEQUENCE ||
        (t->kind == EMBER_KIND_OPTIONAL && t->elem_kind == EMBER_KIND_SEQUENCE)) {
        em_value_set_type(&out[0], EMBER_KIND_SEQUENCE, EMBER_KIND_TENSOR, t->dtype);
        return EMBER_OK;
    }
    const em_tensor *v = t->kind == EMBER_KIND_OPTIONAL ? t->data : t;
    if (v && v->rank >= 0)
        em_tensor_set_shape(&out[0], v->dtype, v->dims, v->rank);
    else
        em_tensor_set_shape(&out[0], t->dtype, NULL, -1);
    return EMBER_OK;
}

static ember_status get_element_run(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    const em_tensor *v = in[0]->kind == EMBER_KIND_OPTIONAL ? in[0]->data : in[0];
    char buf[160];
    if (!v)
        return em_fail(err, EMBER_ERR_RUNTIME, "%s: the optional input holds no value",
                       desc(node, buf, sizeof buf));
    if (out[0].kind != EMBER_KIND_TENSOR) return em_value_copy(&out[0], v, err);
    if (v->dtype != out[0].dtype || !em_same_shape(v, &out[0]))
        return em_fail(err, EMBER_ERR_RUNTIME, "%s: value does not match the inferred output",
                       desc(node, buf, sizeof buf));
    size_t bytes = em_nbytes(v);
    if (bytes) memcpy(out[0].data, v->data, bytes);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * SequenceMap: runs `body` once per position of the first input sequence. Body input j is item
 * i of node input j when that is a sequence (of the same length), else node input j itself;
 * body output k becomes item i of output sequence k.
 * ------------------------------------------------------------------------------------------- */

static ember_status seq_map_infer(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    const em_graph *g = em_attr_graph(node, "body");
    if (!g)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: graph attribute 'body' is required",
                       desc(node, buf, sizeof buf));
    int n_in = node->n_explicit_inputs;
    if (n_in < 1 || g->n_inputs != n_in || g->n_outputs != node->n_outputs)
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: body has %d inputs and %d outputs; the node %d and %d",
                       desc(node, buf, sizeof buf), g->n_inputs, g->n_outputs, n_in,
                       node->n_outputs);
    EM_TRY(expect_kind(node, in[0], 0, EMBER_KIND_SEQUENCE, err));
    for (int j = 0; j < n_in; j++) {
        if (!in[j])
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input %d is missing",
                           desc(node, buf, sizeof buf), j);
        if (in[j]->kind == EMBER_KIND_OPTIONAL)
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input %d is an optional",
                           desc(node, buf, sizeof buf), j);
        if (in[j]->kind == EMBER_KIND_SEQUENCE && in[0]->data && in[j]->data &&
            em_seq_length(in[j]) != em_seq_length(in[0]))
            return em_fail(err, EMBER_ERR_RUNTIME,
                           "%s: input %d has %lld tensors, input 0 has %lld",
                           desc(node, buf, sizeof buf), j, (long long)em_seq_length(in[j]),
                           (long long)em_seq_length(in[0]));
    }
    for (int k = 0; k < node->n_outputs; k++)
        em_value_set_type(&out[k], EMBER_KIND_SEQUENCE, EMBER_KIND_TENSOR,
                          g->values[g->outputs[k]].info.dtype);
    return EMBER_OK;
}

static ember_status seq_map_run(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    char buf[160];
    const em_graph *g = em_attr_graph(node, "body");
    int n_in = node->n_explicit_inputs, n_out = node->n_outputs;
    int64_t n = em_seq_length(in[0]);
    em_tensor **caps = calloc((size_t)g->n_captures + 1, sizeof *caps);
    em_tensor **body_in = calloc((size_t)n_in + 1, sizeof *body_in);
    em_tensor **res = calloc((size_t)n_out + 1, sizeof *res);
    em_tensor **seqs = calloc((size_t)n_out + 1, sizeof *seqs);
    ember_status st = EMBER_OK;
    if (!caps || !body_in || !res || !seqs)
        st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; st == EMBER_OK && i < g->n_captures; i++) {
        int slot = g->values[g->captures[i]].outer;
        if (slot < node->n_explicit_inputs || slot >= node->n_inputs)
            st = em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: body reads '%s' through no input",
                         desc(node, buf, sizeof buf), g->values[g->captures[i]].name);
        else
            caps[i] = in[slot];
    }
    for (int k = 0; st == EMBER_OK && k < n_out; k++) {
        seqs[k] = em_seq_new(out[k].dtype, err);
        if (!seqs[k]) st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; st == EMBER_OK && i < n; i++) {
        for (int j = 0; j < n_in; j++) {
            body_in[j] = in[j]->kind == EMBER_KIND_SEQUENCE ? em_seq_at(in[j], i) : in[j];
            if (!body_in[j])
                st = em_fail(err, EMBER_ERR_RUNTIME, "%s: input %d has no tensor %lld",
                             desc(node, buf, sizeof buf), j, (long long)i);
        }
        if (st == EMBER_OK) st = em_exec_subgraph(ex, g, body_in, n_in, caps, res, err);
        for (int k = 0; st == EMBER_OK && k < n_out; k++) {
            if (res[k]->kind != EMBER_KIND_TENSOR)
                st = em_fail(err, EMBER_ERR_RUNTIME, "%s: body output %d is a %s, not a tensor",
                             desc(node, buf, sizeof buf), k, em_kind_name(res[k]->kind));
            else if (seqs[k]->dtype != EMBER_UNDEFINED && res[k]->dtype != seqs[k]->dtype)
                st = em_fail(err, EMBER_ERR_RUNTIME, "%s: body output %d changes type to %s",
                             desc(node, buf, sizeof buf), k, em_dtype_name(res[k]->dtype));
            if (st != EMBER_OK) break;
            seqs[k]->dtype = res[k]->dtype;
            st = em_seq_insert(seqs[k], i, res[k], err);
            res[k] = NULL;
        }
        for (int k = 0; k < n_out; k++) {
            em_tensor_free(res[k]);
            res[k] = NULL;
        }
    }
    for (int k = 0; seqs && k < n_out; k++) {
        if (st == EMBER_OK) {
            give(&out[k], seqs[k]);
            seqs[k] = NULL;
        }
        em_tensor_free(seqs[k]);
    }
    free(seqs);
    free(res);
    free(body_in);
    free(caps);
    return st;
}

#define ANY EM_OP_ANY_KIND

static const em_op k_sequence_ops[] = {
    {"", "SequenceEmpty", 11, 11, NULL, seq_empty_infer, seq_empty_run, NULL, ANY},
    {"", "SequenceConstruct", 11, 11, NULL, seq_construct_infer, seq_construct_run, NULL, ANY},
    {"", "SequenceLength", 11, 11, NULL, seq_length_infer, seq_length_run, NULL, ANY},
    {"", "SequenceInsert", 11, 11, NULL, seq_insert_infer, seq_insert_run, NULL, ANY},
    {"", "SequenceErase", 11, 11, NULL, seq_erase_infer, seq_erase_run, NULL, ANY},
    {"", "SequenceAt", 11, 11, NULL, seq_at_infer, seq_at_run, NULL, ANY},
    {"", "SplitToSequence", 11, 11, NULL, split_seq_infer, split_seq_run, NULL, ANY},
    {"", "ConcatFromSequence", 11, 11, NULL, concat_seq_infer, concat_seq_run, NULL, ANY},
    {"", "SequenceMap", 17, 17, NULL, seq_map_infer, seq_map_run, NULL, ANY},
    {"", "Optional", 15, 15, NULL, optional_infer, optional_run, NULL, ANY},
    {"", "OptionalHasElement", 15, 18, NULL, has_element_infer, has_element_run, NULL, ANY},
    {"", "OptionalGetElement", 15, 18, NULL, get_element_infer, get_element_run, NULL, ANY},
};

EM_OPS_FAMILY(sequence) {
    *count = sizeof k_sequence_ops / sizeof k_sequence_ops[0];
    return k_sequence_ops;
}
