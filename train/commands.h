// commands.h: emocam-train's subcommands. Each takes (argc, argv) with argv[0] the command
// name, and returns the process exit status (0 ok, 1 failure, 2 bad usage).
#pragma once

int stats_main(int argc, char **argv);
int train_main(int argc, char **argv);
int eval_main(int argc, char **argv);
int plot_main(int argc, char **argv);
int export_main(int argc, char **argv);
int average_main(int argc, char **argv);
