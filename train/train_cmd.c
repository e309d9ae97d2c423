// train_cmd.c: emocam-train train (in progress).
#include <stdio.h>

#include "commands.h"

int train_main(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "emocam-train %s: not built yet\n", argv[0]);
    return 1;
}
