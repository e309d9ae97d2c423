// apputil.h: helpers for the tests that run the emocam program: run it with its output
// captured, read files back, make weights, inputs and folders, and check JSON.
#pragma once
#include <stddef.h>

// Run prog with args (args[0] is the program's name, NULL-terminated) and env additions
// ("NAME=value", NULL-terminated; may be NULL), stdout to out and stderr to err (either may
// be NULL: discarded). Returns the exit status, or -signal, or -1000 when it ran past
// timeout_s (it is then killed).
int run_prog(const char *prog, char *const args[], char *const env[], const char *out,
             const char *err, double timeout_s);
// The whole file, NUL-terminated (NULL if unreadable); *len its length when len is given.
char *slurp(const char *path, size_t *len);
int count_lines(const char *text);
int file_exists(const char *path);
// Entries in dir whose name contains part (e.g. ".tmp"): how many.
int count_entries(const char *dir, const char *part);
// A path in the test's scratch folder: tmp_path("a.csv") -> "/tmp/emocam-test-XXXX/a.csv"
// (one static buffer per call slot: keep up to 16 at once).
const char *tmp_path(const char *name);
// Random-initialised weights of simple_cnn_v1 (the shipped architecture) at path. 0 or -1.
int make_weights(const char *path, unsigned long long seed);
// A w x h video of n frames (moving gradients, no faces) at 25 fps. 0 or -1.
int make_video(const char *path, int w, int h, int n);
// Write text to a file. 0 or -1.
int write_text(const char *path, const char *text);
// 1 when text is one JSON value (with nothing but white space after it).
int json_valid(const char *text);
// The stderr of a failed run must be one line starting with "emocam": 1 if so.
int one_line_error(const char *text);
// Frames in a video file, counted by reading it (-1 if it does not open).
long video_frames(const char *path);
