/* ember bench */
#include "cli.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'bench' is not implemented yet");
    return 1;
}
