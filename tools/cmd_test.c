/* ember test */
#include "cli.h"

int cmd_test(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'test' is not implemented yet");
    return 1;
}
