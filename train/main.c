// main.c: emocam-train, the program that produces emocam's weights.
//
//   emocam-train stats DATA ...     what the data holds (counts, imbalance, duplicates, ...)
//   emocam-train train ...          train a network, one run folder per run
//   emocam-train eval ...           evaluate weights or an ensemble
//   emocam-train plot RUN ...       learning curves of one or several runs
//   emocam-train export IN OUT      a weights file in float16 (half the size) or float32
//   emocam-train average OUT IN...  the mean of several weights files (weight averaging)
//
// Each subcommand lives in its own file and has its own --help.
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const struct {
    const char *name, *what;
    int (*run)(int argc, char **argv);
} COMMANDS[] = {
    {"stats", "print what a data set holds, and draw sample grids", stats_main},
    {"train", "train a network (a run folder with logs, checkpoints and weights)", train_main},
    {"eval", "evaluate weights or an ensemble on a data set", eval_main},
    {"plot", "draw learning curves of one or several runs", plot_main},
    {"export", "rewrite a weights file in float16 (half the size) or float32", export_main},
    {"average", "average weights files (SWA) and measure their batchnorm statistics", average_main},
};
enum { NCOMMANDS = sizeof COMMANDS / sizeof COMMANDS[0] };

static void usage(FILE *to) {
    fprintf(to, "usage: emocam-train COMMAND [options]   (emocam-train COMMAND --help)\n\n");
    for (int i = 0; i < NCOMMANDS; i++) fprintf(to, "  %-7s %s\n", COMMANDS[i].name, COMMANDS[i].what);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "emocam-train: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
