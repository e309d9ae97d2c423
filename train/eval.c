// eval.c: emocam-train eval (in progress).
#include <stdio.h>

#include "commands.h"

int eval_main(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "emocam-train %s: not built yet\n", argv[0]);
    return 1;
}
