// live.c: emocam with no command: frames from a camera (or a file played in real time) are
// recognized and shown in a window as they come; the source drops the frames the loop is too
// slow for, and the overlay counts them.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "app.h"
#include "commands.h"
#include "overlay.h"
#include "source.h"
#include "window.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: emocam [options]                  the camera, live, in a window\n"
            "       emocam video IN [-o OUT.mp4] [--csv F] [--jsonl F]   annotate a video\n"
            "       emocam image IN... [-o DIR]       annotate still images\n"
            "       emocam bench IN [--frames N]      time each stage, as JSON\n"
            "(emocam COMMAND --help for each command's options)\n\n"
            "Keys: q or Esc quit, space pause, s snapshot (PNG), h help, b class bars.\n\n"
            "  --device DEV        the camera (/dev/video0)\n"
            "  --size WxH          ask the camera for this frame size (its default)\n"
            "  --fps N             ask the camera for this frame rate (its default)\n"
            "  --realtime FILE     play a video file at its own rate instead of a camera\n"
            "  --loop              start the file over when it ends (with --realtime)\n"
            "  --no-stats          leave out the frame rate and stage times\n"
            "  --snapshot-dir DIR  where s saves snapshots (the current folder)\n"
            "  --snapshot-after N  take a snapshot after N frames (as if s were pressed)\n"
            "  --quit-after N      quit after N frames (as if q were pressed)\n");
    app_options_help(to);
}

static const char *const HELP[] = {
    "emocam: keys",
    "q, Esc\tquit",
    "space\tpause / resume",
    "s\tsave a snapshot (PNG)",
    "b\tclass bars on / off",
    "h\tthis help on / off",
};

typedef struct {
    AppOptions ao;
    SourceConfig sc;
    int loop, stats;
    const char *snap_dir;
    long snap_after, quit_after;
} LiveOptions;

// DIR/emocam-YYYYmmdd-HHMMSS-N.png
static char *snapshot_path(const char *dir, int n) {
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    size_t len = strlen(dir) + 64;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/emocam-%s-%d.png", dir, stamp, n);
    return p;
}

static int parse_args(LiveOptions *lo, int argc, char **argv, int *exit_status) {
    char err[EMO_ERRLEN];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = app_option(&lo->ao, argc, argv, &i, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "emocam: %s\n", err);
            return -1;
        }
        if (rc > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            *exit_status = 0;
            return -1;
        }
        if (!strcmp(a, "--loop")) {
            lo->loop = 1;
            continue;
        }
        if (!strcmp(a, "--no-stats")) {
            lo->stats = 0;
            continue;
        }
        int known = !strcmp(a, "--device") || !strcmp(a, "--size") || !strcmp(a, "--fps") ||
                    !strcmp(a, "--realtime") || !strcmp(a, "--snapshot-dir") ||
                    !strcmp(a, "--snapshot-after") || !strcmp(a, "--quit-after");
        if (!known) {
            if (a[0] == '-') fprintf(stderr, "emocam: unknown option '%s' (emocam --help)\n", a);
            else fprintf(stderr, "emocam: unknown command '%s' (emocam --help lists them)\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "emocam: option %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        long n;
        if (!strcmp(a, "--device")) {
            lo->sc.kind = SOURCE_CAMERA;
            lo->sc.path = v;
        } else if (!strcmp(a, "--realtime")) {
            lo->sc.kind = SOURCE_REALTIME;
            lo->sc.path = v;
        } else if (!strcmp(a, "--snapshot-dir")) {
            lo->snap_dir = v;
        } else if (!strcmp(a, "--size")) {
            char *x = strchr(v, 'x');
            if (!x) x = strchr(v, 'X');
            char wbuf[16];
            int ok = x && x - v > 0 && x - v < (long)sizeof wbuf;
            long w = 0, h = 0;
            if (ok) {
                snprintf(wbuf, sizeof wbuf, "%.*s", (int)(x - v), v);
                ok = parse_long(wbuf, 16, 8192, &w) == 0 && parse_long(x + 1, 16, 8192, &h) == 0;
            }
            if (!ok) {
                fprintf(stderr, "emocam: --size '%s': want WIDTHxHEIGHT, such as 640x480\n", v);
                return -1;
            }
            lo->sc.width = (int)w;
            lo->sc.height = (int)h;
        } else if (!strcmp(a, "--fps")) {
            if (parse_long(v, 1, 1000, &n)) {
                fprintf(stderr, "emocam: --fps '%s': want frames per second, 1 to 1000\n", v);
                return -1;
            }
            lo->sc.fps = (int)n;
        } else {   // --snapshot-after, --quit-after
            if (parse_long(v, 1, 1L << 40, &n)) {
                fprintf(stderr, "emocam: %s '%s': want a number of frames (1 or more)\n", a, v);
                return -1;
            }
            if (!strcmp(a, "--snapshot-after")) lo->snap_after = n;
            else lo->quit_after = n;
        }
    }
    return 0;
}

int live_main(int argc, char **argv) {
    LiveOptions lo = {.ao = app_defaults(), .sc = {.kind = SOURCE_CAMERA, .path = "/dev/video0"},
                      .stats = 1, .snap_dir = "."};
    int status = 2;
    if (parse_args(&lo, argc, argv, &status)) return status;
    if (lo.loop && lo.sc.kind != SOURCE_REALTIME) {
        fprintf(stderr, "emocam: --loop needs --realtime FILE\n");
        return 2;
    }
    struct stat st;
    if (stat(lo.snap_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "emocam: --snapshot-dir %s: %s\n", lo.snap_dir,
                errno == ENOENT || !S_ISDIR(st.st_mode) ? "not a folder" : strerror(errno));
        return 2;
    }

    char err[EMO_ERRLEN];
    status = 1;
    Source *src = NULL;
    Recognizer rec = {0};
    Overlay *ov = NULL;
    Window *win = NULL;
    Image shown = {0}, panel = {0};
    const char *what = lo.sc.path;
    if (!(src = source_open(&lo.sc, err, sizeof err))) goto fail;
    if (recognizer_open(&rec, &lo.ao, err, sizeof err)) goto fail;
    OverlayConfig oc = overlay_defaults();
    oc.bars = lo.ao.bars;
    oc.stats = lo.stats;
    if (!(ov = overlay_new(&oc, err, sizeof err))) goto fail;
    int w, h;
    source_size(src, &w, &h);
    char title[256];
    snprintf(title, sizeof title, "emocam: %s", what);
    if (!(win = window_open(title, w, h, err, sizeof err))) goto fail;

    OverlayStats ost = {.dropped = 0};
    for (int k = 0; k < NSTAGES; k++) ost.stage[k] = STAGE_NAMES[k];
    ost.stage[ST_OUTPUT] = "show";
    double ms[NSTAGES] = {0}, t_prev = 0;
    long frames = 0, dropped_before = 0;   // dropped in earlier loops of the file
    int paused = 0, help = 0, snaps = 0, quit = 0, snap_pending = 0, have = 0;
    volatile sig_atomic_t *stop = app_catch_signals();
    while (!quit && !*stop) {
        WindowEvent ev;
        while ((ev = window_poll(win)) != WIN_NONE) {
            switch (ev) {
            case WIN_QUIT: quit = 1; break;
            case WIN_PAUSE: paused = !paused; break;
            case WIN_SNAPSHOT: snap_pending = 1; break;
            case WIN_HELP: help = !help; break;
            case WIN_BARS: overlay_set_bars(ov, !overlay_bars(ov)); break;
            default: break;
            }
        }
        if (quit) break;
        if (!paused || !have) {
            double t0 = app_now();
            Frame f;
            int rc = source_read(src, &f, err, sizeof err);
            if (rc < 0) goto fail;
            if (rc == 0) {
                if (!lo.loop || frames == 0) {
                    fprintf(stderr, "emocam: %s: end of the video\n", what);
                    break;
                }
                dropped_before += source_dropped(src);
                source_close(src);
                if (!(src = source_open(&lo.sc, err, sizeof err))) goto fail;
                continue;
            }
            if (!(shown.px && shown.w == f.image->w && shown.h == f.image->h)) {
                image_free(&shown);
                if (image_new(&shown, f.image->w, f.image->h, 3)) {
                    snprintf(err, sizeof err, "%s: out of memory for a %dx%d frame", what, f.image->w, f.image->h);
                    goto fail;
                }
            }
            cv_paste(&shown, f.image, 0, 0);
            ms[ST_DECODE] = 1e3 * (app_now() - t0);
            const Track *tracks;
            int n = recognizer_run(&rec, &shown, &tracks, ms);
            if (n < 0) {
                snprintf(err, sizeof err, "%s: out of memory recognizing frame %ld", what, f.index);
                goto fail;
            }
            double t1 = app_now();
            ost.dropped = dropped_before + source_dropped(src);
            overlay_draw(ov, &shown, tracks, n, &ost);
            ms[ST_DRAW] = 1e3 * (app_now() - t1);
            have = 1;
            frames++;
            double now = app_now();
            if (t_prev > 0) {
                double fps = 1.0 / (now - t_prev > 1e-6 ? now - t_prev : 1e-6);
                ost.fps = ost.fps > 0 ? 0.9 * ost.fps + 0.1 * fps : fps;
            }
            t_prev = now;
            for (int k = 0; k < NSTAGES; k++) ost.ms[k] = frames > 1 ? 0.9 * ost.ms[k] + 0.1 * ms[k] : ms[k];
            if (lo.snap_after && frames == lo.snap_after) window_push_key(win, 's');
            if (lo.quit_after && frames == lo.quit_after) window_push_key(win, 'q');
        } else {
            struct timespec ts = {0, 15 * 1000 * 1000};   // paused: look at the keys ~60 times a second
            nanosleep(&ts, NULL);
            t_prev = 0;
        }
        double t2 = app_now();
        const Image *out = &shown;
        if (help || paused) {
            image_free(&panel);
            if (cv_convert(&shown, &panel, 3) == 0) {
                if (help) overlay_panel(ov, &panel, HELP, (int)(sizeof HELP / sizeof HELP[0]));
                else {
                    const char *const p[] = {"paused", "space resumes, h for help"};
                    overlay_panel(ov, &panel, p, 2);
                }
                out = &panel;
            }
        }
        if (window_show(win, out, err, sizeof err)) goto fail;
        ms[ST_OUTPUT] = 1e3 * (app_now() - t2);
        if (snap_pending) {
            snap_pending = 0;
            Image grab;
            char *path = snapshot_path(lo.snap_dir, ++snaps);
            if (!path) {
                snprintf(err, sizeof err, "out of memory");
                goto fail;
            }
            if (window_grab(win, &grab, err, sizeof err) == 0) {
                if (cv_imwrite(path, &grab, 0, err, sizeof err) == 0) printf("snapshot: %s\n", path);
                else fprintf(stderr, "emocam: %s\n", err);   // the run goes on
                fflush(stdout);
                image_free(&grab);
            } else {
                fprintf(stderr, "emocam: %s\n", err);
            }
            free(path);
        }
    }
    fprintf(stderr, "emocam: %ld frames shown, %ld dropped\n", frames, dropped_before + source_dropped(src));
    status = 0;
    goto done;
fail:
    fprintf(stderr, "emocam: %s\n", err);
done:
    window_close(win);
    image_free(&shown);
    image_free(&panel);
    overlay_free(ov);
    recognizer_close(&rec);
    source_close(src);
    return status;
}
