// commands.h: emocam's commands. Each takes (argc, argv) with argv[0] the command name and
// returns the process exit status: 0 ok, 1 failure, 2 bad usage (130 when interrupted).
#pragma once
#include <signal.h>

int live_main(int argc, char **argv);    // emocam [options]: the camera (or a file) in a window
int video_main(int argc, char **argv);   // emocam video IN: an annotated copy, CSV, JSONL
int image_main(int argc, char **argv);   // emocam image IN...: annotated stills
int bench_main(int argc, char **argv);   // emocam bench IN: per-stage times as JSON

// SIGINT and SIGTERM set the returned flag: the file commands stop at the next frame and
// remove their temporary outputs, the window closes. main installs the handler first thing;
// calling again only returns the flag. The flag is the one piece of process-wide state: a
// signal handler has nowhere else to write.
volatile sig_atomic_t *app_catch_signals(void);
