// main.c: emocam, the live facial-expression recognizer.
//
//   emocam [options]                 the camera (or --realtime FILE) in a window
//   emocam video IN [-o OUT.mp4]     annotate a video: an mp4, CSV and JSONL rows per face
//   emocam image IN... [-o DIR]      annotate still images
//   emocam bench IN                  per-stage milliseconds and frames per second, as JSON
//
// Each command lives in its own file and has its own --help.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

volatile sig_atomic_t *app_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return &interrupted;
}

static const struct {
    const char *name, *what;
    int (*run)(int argc, char **argv);
} COMMANDS[] = {
    {"video", "annotate a video file (mp4 out, CSV and JSONL rows per face)", video_main},
    {"image", "annotate still images", image_main},
    {"bench", "time each stage on a video and print JSON", bench_main},
};
enum { NCOMMANDS = sizeof COMMANDS / sizeof COMMANDS[0] };

int main(int argc, char **argv) {
    // OpenCV and FFmpeg write their own warnings to stderr ("moov atom not found"); emocam
    // reports every failure itself in one line naming the file, so they are silenced unless
    // the user asks for them by setting these variables.
    setenv("OPENCV_LOG_LEVEL", "SILENT", 0);
    setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", 0);   // AV_LOG_QUIET
    app_catch_signals();   // first: an interrupt at any point after this removes temporary files
    if (argc >= 2 && argv[1][0] != '-')
        for (int i = 0; i < NCOMMANDS; i++)
            if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    if (argc >= 2 && argv[1][0] != '-') {
        fprintf(stderr, "emocam: unknown command '%s' (emocam --help lists them)\n", argv[1]);
        return 2;
    }
    return live_main(argc, argv);   // no command: the live window, with its options
}
