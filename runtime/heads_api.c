/* Task heads in the public API (include/ember.h): ember_head, parsed or filled by hand, turned
 * into em_head_spec and attached to the session's graph by em_head_attach (pass_heads.c), so
 * that the fused ai.ember kernels compute the decisions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/heads.h"
#include "pass_heads.h"
#include "session.h"

void ember_head_init(ember_head *head, ember_head_kind kind) {
    if (!head) return;
    memset(head, 0, sizeof *head);
    head->kind = kind;
    head->threshold = 0.5f;
    head->ordinal = EMBER_ORDINAL_CORAL;
    head->decision_dtype = EMBER_UNDEFINED;
}

void ember_head_clear(ember_head *head) {
    if (!head || !head->owned) return;
    if (head->thresholds == head->owned) {
        head->thresholds = NULL;
        head->n_thresholds = 0;
    }
    free(head->owned);
    head->owned = NULL;
}

ember_status ember_head_parse(const char *spec, ember_head *head, ember_error *err) {
    if (!spec || !head) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    em_head_spec s;
    EM_TRY(em_head_parse(spec, &s, err));
    static const ember_head_kind kinds[] = {
        [EM_HEAD_BINARY] = EMBER_HEAD_BINARY,
        [EM_HEAD_MULTILABEL] = EMBER_HEAD_MULTILABEL,
        [EM_HEAD_MULTICLASS] = EMBER_HEAD_MULTICLASS,
        [EM_HEAD_ORDINAL] = EMBER_HEAD_ORDINAL,
    };
    ember_head_init(head, kinds[s.kind]);
    head->ordinal = s.corn ? EMBER_ORDINAL_CORN : EMBER_ORDINAL_CORAL;
    if (s.n_thresholds == 1) {
        head->threshold = s.thresholds[0];
        em_head_spec_clear(&s);
    } else if (s.n_thresholds > 1) { /* the head takes the array over */
        head->owned = s.thresholds;
        head->thresholds = s.thresholds;
        head->n_thresholds = (size_t)s.n_thresholds;
    }
    return EMBER_OK;
}

static bool threshold_ok(float t) { return t >= 0.0f && t <= 1.0f; }

/* Decision types the fused kernels write (SigmoidThreshold / CumulativeOrdinal `to`); the
 * multiclass index is int64 and only binary / multi-label decisions may be bool. */
static bool decision_dtype_ok(ember_head_kind kind, ember_dtype dt) {
    if (dt == EMBER_UNDEFINED || dt == EMBER_INT64) return true;
    if (!em_head_decision_type_ok(dt)) return false;
    if (dt == EMBER_BOOL) return kind == EMBER_HEAD_BINARY || kind == EMBER_HEAD_MULTILABEL;
    return kind != EMBER_HEAD_MULTICLASS;
}

static const char *kind_name(ember_head_kind kind) {
    switch (kind) {
    case EMBER_HEAD_BINARY: return "binary";
    case EMBER_HEAD_MULTILABEL: return "multilabel";
    case EMBER_HEAD_MULTICLASS: return "multiclass";
    case EMBER_HEAD_ORDINAL: return "ordinal";
    }
    return "?";
}

/* Attach head `h` (index i of the options) to g; n_model_outputs: outputs before any head. */
static ember_status attach_one(em_graph *g, int n_model_outputs, const ember_head *h, size_t i,
                               ember_error *err) {
    if (h->kind < EMBER_HEAD_BINARY || h->kind > EMBER_HEAD_ORDINAL)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "head #%zu: unknown kind %d", i,
                       (int)h->kind);
    const char *kind = kind_name(h->kind);
    int index = -1;
    if (!h->output) {
        if (n_model_outputs != 1)
            return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                           "head %s: the model has %d outputs; name the logits in "
                           "ember_head.output",
                           kind, n_model_outputs);
        index = 0;
    } else {
        for (int k = 0; k < n_model_outputs; k++)
            if (strcmp(g->values[g->outputs[k]].name, h->output) == 0) index = k;
        if (index < 0)
            return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "head %s: the model has no output '%s'",
                           kind, h->output);
    }
    const char *output = g->values[g->outputs[index]].name;
    bool list = h->kind == EMBER_HEAD_MULTILABEL && h->thresholds && h->n_thresholds > 0;
    if (h->kind != EMBER_HEAD_MULTILABEL && h->thresholds && h->n_thresholds > 1)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "head %s on output '%s': per-label thresholds are for multilabel; set "
                       "`threshold`",
                       kind, output);
    if (h->n_thresholds > 0 && !h->thresholds)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "head %s on output '%s': n_thresholds is %zu but thresholds is NULL", kind,
                       output, h->n_thresholds);
    if (list && h->n_thresholds > EM_HEAD_MAX_THRESHOLDS)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "head %s on output '%s': more than %d thresholds", kind, output,
                       EM_HEAD_MAX_THRESHOLDS);
    for (size_t k = 0; list && k < h->n_thresholds; k++)
        if (!threshold_ok(h->thresholds[k]))
            return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                           "head %s on output '%s': threshold %zu is %g, not in [0, 1]", kind,
                           output, k, (double)h->thresholds[k]);
    if (!list && !threshold_ok(h->threshold))
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "head %s on output '%s': the threshold is %g, not in [0, 1]", kind, output,
                       (double)h->threshold);
    if (h->kind == EMBER_HEAD_ORDINAL && h->ordinal != EMBER_ORDINAL_CORAL &&
        h->ordinal != EMBER_ORDINAL_CORN)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "head ordinal on output '%s': unknown ordinal mode %d", output,
                       (int)h->ordinal);
    if (!decision_dtype_ok(h->kind, h->decision_dtype))
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "head %s on output '%s': the decision cannot be %s", kind, output,
                       em_dtype_name(h->decision_dtype));
    static const em_head_kind kinds[] = {
        [EMBER_HEAD_BINARY] = EM_HEAD_BINARY,
        [EMBER_HEAD_MULTILABEL] = EM_HEAD_MULTILABEL,
        [EMBER_HEAD_MULTICLASS] = EM_HEAD_MULTICLASS,
        [EMBER_HEAD_ORDINAL] = EM_HEAD_ORDINAL,
    };
    float single = h->threshold;
    em_head_spec spec = {
        .kind = kinds[h->kind],
        .corn = h->kind == EMBER_HEAD_ORDINAL && h->ordinal == EMBER_ORDINAL_CORN,
        .probabilities = h->probabilities != 0,
        .n_thresholds = list ? (int)h->n_thresholds : 1,
        .thresholds = list ? (float *)h->thresholds : &single, /* borrowed: never cleared */
        .decision_dtype = h->decision_dtype,
        .decision_name = h->decision_name,
        .probabilities_name = h->probabilities_name,
    };
    /* Default names are fixed ("<output>_decision"), so callers know what to ask for. */
    size_t size = strlen(output) + sizeof "_probabilities";
    char *decision = malloc(size), *probabilities = malloc(size);
    if (!decision || !probabilities) {
        free(decision);
        free(probabilities);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    snprintf(decision, size, "%s_decision", output);
    snprintf(probabilities, size, "%s_probabilities", output);
    if (!spec.decision_name) spec.decision_name = decision;
    if (!spec.probabilities_name) spec.probabilities_name = probabilities;
    ember_status st = EMBER_OK;
    if (h->probabilities && strcmp(spec.decision_name, spec.probabilities_name) == 0)
        st = em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                     "head %s on output '%s': the decision and probabilities have one name, '%s'",
                     kind, output, spec.decision_name);
    if (st == EMBER_OK) st = em_head_attach(g, index, &spec, err);
    free(decision);
    free(probabilities);
    return st;
}

ember_status em_session_attach_heads(em_graph *g, const ember_head *heads, size_t n_heads,
                                     ember_error *err) {
    if (n_heads == 0) return EMBER_OK;
    if (!heads)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "n_heads is %zu but heads is NULL",
                       n_heads);
    int n_model_outputs = g->n_outputs;
    for (size_t i = 0; i < n_heads; i++)
        EM_TRY(attach_one(g, n_model_outputs, &heads[i], i, err));
    return EMBER_OK;
}

/* Rank-long arrays of "no name" for ember_value_info.dim_names. */
static const char *const k_no_dim_names[EMBER_MAX_RANK];

size_t ember_session_output_count(const ember_session *s) {
    return s ? (size_t)s->graph->n_outputs : 0;
}

ember_status ember_session_output(const ember_session *s, size_t index, ember_value_info *info) {
    if (!s || !info || index >= (size_t)s->graph->n_outputs) return EMBER_ERR_INVALID_ARGUMENT;
    const em_value *v = &s->graph->values[s->graph->outputs[index]];
    info->name = v->name;
    info->dtype = v->info.dtype;
    info->rank = v->info.rank;
    info->dims = v->info.dims;
    info->dim_names = k_no_dim_names;
    return EMBER_OK;
}
