/* ember run */
#include "cli.h"

int cmd_run(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'run' is not implemented yet");
    return 1;
}
