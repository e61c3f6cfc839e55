/* Task heads applied by the command line to a model's raw output (logits):
 *   binary[:T]            one logit per row; label = sigmoid(x) > T (T = 0.5)
 *   multilabel[:T1,...]   L logits; label_k = sigmoid(x_k) > T_k (one T for all, or one each)
 *   multiclass            C >= 2 logits; label = argmax (first index on ties)
 *   ordinal[:coral|corn]  K-1 logits; label = count of P(y > k) > 0.5, with P(y > k) =
 *                         sigmoid(x_k) (coral, the default) or the running product (corn)
 * Plain loops in float32 for now; they can move to the fused kernels of the runtime later. */
#ifndef EMBER_TOOLS_HEADS_CLI_H
#define EMBER_TOOLS_HEADS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cli_head_kind {
    CLI_HEAD_NONE = 0,
    CLI_HEAD_BINARY,
    CLI_HEAD_MULTILABEL,
    CLI_HEAD_MULTICLASS,
    CLI_HEAD_ORDINAL,
} cli_head_kind;

typedef struct cli_head {
    cli_head_kind kind;
    float threshold;   /* binary, ordinal; multilabel when one threshold is given */
    float *thresholds; /* multilabel: one per label (NULL: `threshold` for all) */
    size_t n_thresholds;
    bool corn; /* ordinal: CORN instead of CORAL */
} cli_head;

/* Parse "--head" text. false: msg says why. */
bool cli_head_parse(const char *spec, cli_head *head, char *msg, size_t msg_size);
void cli_head_free(cli_head *head);
const char *cli_head_name(const cli_head *head);

/* Labels and probabilities per row for an output with `logits` values per row; false (with a
 * message) when the head does not fit that output. Probabilities: binary P(y=1); multilabel
 * P(label k); multiclass softmax over the classes; ordinal P(y = k) for the K classes. */
bool cli_head_shape(const cli_head *head, int64_t logits, int64_t *labels_per_row,
                    int64_t *probs_per_row, char *msg, size_t msg_size);

/* Apply to `rows` rows of `logits` values each. labels: rows x labels_per_row; probs (may be
 * NULL): rows x probs_per_row. */
void cli_head_apply(const cli_head *head, const float *logits, int64_t rows, int64_t n_logits,
                    int64_t *labels, float *probs);

#endif
