/* Task heads in the command line: plain float32 loops over a model's logits. */
#include "heads_cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_threshold(const char *text, size_t len, float *out) {
    char buf[64];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *end = NULL;
    errno = 0;
    float v = strtof(buf, &end);
    if (errno != 0 || end != buf + len || !(v >= 0.0f && v <= 1.0f)) return false;
    *out = v;
    return true;
}

bool cli_head_parse(const char *spec, cli_head *head, char *msg, size_t msg_size) {
    memset(head, 0, sizeof *head);
    head->threshold = 0.5f;
    const char *colon = strchr(spec, ':');
    size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *arg = colon ? colon + 1 : NULL;
#define IS(word) (name_len == strlen(word) && strncmp(spec, word, name_len) == 0)
    if (IS("binary")) {
        head->kind = CLI_HEAD_BINARY;
        if (arg && !parse_threshold(arg, strlen(arg), &head->threshold)) {
            snprintf(msg, msg_size, "--head binary:%s: the threshold must be a number in [0, 1]",
                     arg);
            return false;
        }
        return true;
    }
    if (IS("multilabel")) {
        head->kind = CLI_HEAD_MULTILABEL;
        if (!arg) return true;
        size_t n = 1;
        for (const char *c = arg; *c; c++) n += *c == ',';
        float *t = malloc(n * sizeof *t);
        if (!t) {
            snprintf(msg, msg_size, "out of memory");
            return false;
        }
        const char *p = arg;
        for (size_t i = 0; i < n; i++) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (!parse_threshold(p, len, &t[i])) {
                snprintf(msg, msg_size,
                         "--head multilabel:%s: thresholds must be numbers in [0, 1], "
                         "separated by commas", arg);
                free(t);
                return false;
            }
            p = comma ? comma + 1 : p + len;
        }
        if (n == 1) {
            head->threshold = t[0];
            free(t);
        } else {
            head->thresholds = t;
            head->n_thresholds = n;
        }
        return true;
    }
    if (IS("multiclass")) {
        head->kind = CLI_HEAD_MULTICLASS;
        if (arg) {
            snprintf(msg, msg_size, "--head multiclass takes no argument (got '%s')", arg);
            return false;
        }
        return true;
    }
    if (IS("ordinal")) {
        head->kind = CLI_HEAD_ORDINAL;
        if (!arg || strcmp(arg, "coral") == 0) return true;
        if (strcmp(arg, "corn") == 0) {
            head->corn = true;
            return true;
        }
        snprintf(msg, msg_size, "--head ordinal:%s: expected ordinal:coral or ordinal:corn", arg);
        return false;
    }
#undef IS
    snprintf(msg, msg_size,
             "--head %s: expected binary[:T], multilabel[:T1,T2,...], multiclass or "
             "ordinal[:coral|corn]", spec);
    return false;
}

void cli_head_free(cli_head *head) {
    free(head->thresholds);
    head->thresholds = NULL;
    head->n_thresholds = 0;
}

const char *cli_head_name(const cli_head *head) {
    switch (head->kind) {
    case CLI_HEAD_BINARY: return "binary";
    case CLI_HEAD_MULTILABEL: return "multilabel";
    case CLI_HEAD_MULTICLASS: return "multiclass";
    case CLI_HEAD_ORDINAL: return head->corn ? "ordinal:corn" : "ordinal:coral";
    default: return "none";
    }
}

bool cli_head_shape(const cli_head *head, int64_t logits, int64_t *labels_per_row,
                    int64_t *probs_per_row, char *msg, size_t msg_size) {
    switch (head->kind) {
    case CLI_HEAD_BINARY:
        if (logits != 1) {
            snprintf(msg, msg_size,
                     "--head binary needs one logit per row, the output has %lld (use "
                     "multilabel or multiclass)", (long long)logits);
            return false;
        }
        *labels_per_row = *probs_per_row = 1;
        return true;
    case CLI_HEAD_MULTILABEL:
        if (logits < 1 || (head->thresholds && (int64_t)head->n_thresholds != logits)) {
            snprintf(msg, msg_size, "--head multilabel has %zu thresholds, the output has %lld "
                     "labels per row", head->n_thresholds, (long long)logits);
            return false;
        }
        *labels_per_row = *probs_per_row = logits;
        return true;
    case CLI_HEAD_MULTICLASS:
        if (logits < 2) {
            snprintf(msg, msg_size,
                     "--head multiclass needs at least 2 logits per row, the output has %lld "
                     "(an argmax over one value is always 0: use binary)", (long long)logits);
            return false;
        }
        *labels_per_row = 1;
        *probs_per_row = logits;
        return true;
    case CLI_HEAD_ORDINAL:
        if (logits < 1) {
            snprintf(msg, msg_size, "--head ordinal needs at least 1 logit per row");
            return false;
        }
        *labels_per_row = 1;
        *probs_per_row = logits + 1;
        return true;
    default:
        snprintf(msg, msg_size, "no head");
        return false;
    }
}

/* float32 logistic function, without overflow for large |x|. */
static inline float sigmoid(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

void cli_head_apply(const cli_head *head, const float *logits, int64_t rows, int64_t n,
                    int64_t *labels, float *probs) {
    switch (head->kind) {
    case CLI_HEAD_BINARY:
    case CLI_HEAD_MULTILABEL:
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t k = 0; k < n; k++) {
                float t = head->thresholds ? head->thresholds[k] : head->threshold;
                float p = sigmoid(logits[r * n + k]);
                labels[r * n + k] = p > t;
                if (probs) probs[r * n + k] = p;
            }
        }
        break;
    case CLI_HEAD_MULTICLASS:
        for (int64_t r = 0; r < rows; r++) {
            const float *x = logits + r * n;
            int64_t best = 0;
            for (int64_t k = 1; k < n; k++)
                if (x[k] > x[best]) best = k;
            labels[r] = best;
            if (probs) {
                float m = x[best], sum = 0.0f;
                float *p = probs + r * n;
                for (int64_t k = 0; k < n; k++) {
                    p[k] = expf(x[k] - m);
                    sum += p[k];
                }
                for (int64_t k = 0; k < n; k++) p[k] /= sum;
            }
        }
        break;
    case CLI_HEAD_ORDINAL:
        for (int64_t r = 0; r < rows; r++) {
            const float *x = logits + r * n;
            float *p = probs ? probs + r * (n + 1) : NULL;
            float cum = 1.0f, prev = 1.0f;
            int64_t rank = 0;
            for (int64_t k = 0; k < n; k++) {
                float s = sigmoid(x[k]);
                cum = head->corn ? cum * s : s; /* P(y > k) */
                rank += cum > head->threshold;
                if (p) p[k] = prev - cum; /* P(y = k) = P(y > k-1) - P(y > k) */
                prev = cum;
            }
            if (p) p[n] = prev;
            labels[r] = rank;
        }
        break;
    default:
        break;
    }
}
