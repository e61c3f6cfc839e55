/* `--head` in the command line (ember score, ember run): the text goes to ember_head_parse and
 * the head is applied by the session (ember_session_options.heads), so the decisions are the
 * fused kernels' own. The command line asks for int64 labels (score writes them as integers)
 * unless it says otherwise. */
#ifndef EMBER_TOOLS_HEADS_CLI_H
#define EMBER_TOOLS_HEADS_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "ember.h"

typedef struct cli_head {
    bool active;
    ember_head head;
    char output[256];        /* the logits output the head reads */
    char decision[288];      /* names of the outputs it adds */
    char probabilities[288];
} cli_head;

/* Parse `spec` for the logits output `output`; false with the parser's message. The decision
 * is int64 when `int64_labels`, else the kind's default type. */
bool cli_head_setup(cli_head *h, const char *spec, const char *output, bool probabilities,
                    bool int64_labels, char *msg, size_t msg_size);
void cli_head_free(cli_head *h);

#endif
