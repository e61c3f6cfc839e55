/* `--head` in the command line, over the public API. */
#include "heads_cli.h"

#include <stdio.h>
#include <string.h>

bool cli_head_setup(cli_head *h, const char *spec, const char *output, bool probabilities,
                    bool int64_labels, char *msg, size_t msg_size) {
    memset(h, 0, sizeof *h);
    ember_error err;
    if (ember_head_parse(spec, &h->head, &err) != EMBER_OK) {
        /* the parser's messages start with "head ": say it as the option */
        snprintf(msg, msg_size, "%s%s", strncmp(err.message, "head ", 5) == 0 ? "--" : "",
                 err.message);
        return false;
    }
    if (strlen(output) >= sizeof h->output) {
        snprintf(msg, msg_size, "--head: the output name is too long");
        ember_head_clear(&h->head);
        return false;
    }
    snprintf(h->output, sizeof h->output, "%s", output);
    snprintf(h->decision, sizeof h->decision, "%s_decision", output);
    snprintf(h->probabilities, sizeof h->probabilities, "%s_probabilities", output);
    h->head.output = h->output;
    h->head.decision_name = h->decision;
    h->head.probabilities_name = h->probabilities;
    h->head.probabilities = probabilities;
    if (int64_labels) h->head.decision_dtype = EMBER_INT64;
    h->active = true;
    return true;
}

void cli_head_free(cli_head *h) {
    ember_head_clear(&h->head);
    h->active = false;
}
