/* The ember command line: a thin client of the public API (include/ember.h only). */
#ifndef EMBER_TOOLS_CLI_H
#define EMBER_TOOLS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "ember.h"

/* Each subcommand: argv[0] is the subcommand name. Returns the process exit code:
 * 0 success, 1 failure (error printed on stderr as one line), 2 usage / bad input data. */
int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* "ember: <message>" on stderr, newline added. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* True if `arg` is `name` (e.g. "--threads"); takes the value from the next argv entry or from
 * "--threads=4". On a missing value prints an error and sets *bad. */
bool cli_flag_value(int argc, char **argv, int *i, const char *name, const char **value, bool *bad);
/* Parse an integer / float option value, printing an error on failure. */
bool cli_parse_int(const char *flag, const char *text, long long *out);
bool cli_parse_double(const char *flag, const char *text, double *out);
/* Plugins given with --plugin before the subcommand are loaded by main(). */

#endif
