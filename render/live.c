// live.c: emocam with no command: frames from a camera (or a file played in real time) are
// recognized and shown in a window as they come; the source drops the frames the loop is too
// slow for, and the overlay counts them.
//
// Two threads share the work, as the stages of a camera pipeline: a reader thread takes each
// frame from the source, then detects and crops its faces; the main thread classifies them,
// tracks, draws, shows the window and answers the keys. Four slots pass frames between them,
// so reading and detecting the next frame overlaps classifying and showing this one. When the
// main thread falls behind, the slots fill, the reader stops reading, and the source drops
// frames as a camera would.
#include <errno.h>
#include <pthread.h>
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

enum { NSLOTS = 4 };   // as many as the camera's V4L2 buffers (capture/source.c)

typedef struct {
    Image img;                  // the frame
    int n;                      // its faces
    Box boxes[APP_MAX_FACES];
    uint8_t *faces;             // (APP_MAX_FACES, 48, 48) crops
    double ms[NSTAGES];         // decode, detect, crop
    long dropped;               // frames the source had dropped by then, over all loops
} Slot;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    Slot slot[NSLOTS];
    int head, count;            // the oldest full slot, and how many are full (under mu)
    int stop;                   // main -> reader: stop reading (under mu)
    int done, failed;           // reader -> main: no more frames; an error, in err (under mu)
    char err[EMO_ERRLEN];
    // the reader's own
    Source *src;                // opened by main before the thread starts, closed after
    const LiveOptions *lo;
    Recognizer *rec;            // only its detector
    long frames, dropped_before;
} Reader;

static void reader_finish(Reader *rd, const char *err) {
    pthread_mutex_lock(&rd->mu);
    rd->done = 1;
    if (err) {
        rd->failed = 1;
        snprintf(rd->err, sizeof rd->err, "%s", err);
    }
    pthread_cond_broadcast(&rd->cv);
    pthread_mutex_unlock(&rd->mu);
}

static void *reader_main(void *arg) {
    Reader *rd = arg;
    char err[EMO_ERRLEN];
    for (;;) {
        pthread_mutex_lock(&rd->mu);
        while (!rd->stop && rd->count == NSLOTS) pthread_cond_wait(&rd->cv, &rd->mu);
        int stop = rd->stop, k = (rd->head + rd->count) % NSLOTS;
        pthread_mutex_unlock(&rd->mu);
        if (stop) return NULL;
        Slot *s = &rd->slot[k];
        double t0 = app_now();
        Frame f;
        int rc = source_read(rd->src, &f, err, sizeof err);
        if (rc == 0 && rd->lo->loop && rd->frames > 0) {   // start the file over
            rd->dropped_before += source_dropped(rd->src);
            source_close(rd->src);
            if ((rd->src = source_open(&rd->lo->sc, err, sizeof err))) continue;
            rc = -1;
        }
        if (rc <= 0) {
            reader_finish(rd, rc < 0 ? err : NULL);
            return NULL;
        }
        if (!(s->img.px && s->img.w == f.image->w && s->img.h == f.image->h)) {
            image_free(&s->img);
            if (image_new(&s->img, f.image->w, f.image->h, 3)) {
                snprintf(err, sizeof err, "%s: out of memory for a %dx%d frame", rd->lo->sc.path,
                         f.image->w, f.image->h);
                reader_finish(rd, err);
                return NULL;
            }
        }
        cv_paste(&s->img, f.image, 0, 0);
        s->ms[ST_DECODE] = 1e3 * (app_now() - t0);
        if ((s->n = recognizer_detect(rd->rec, &s->img, s->boxes, s->faces, s->ms)) < 0) {
            snprintf(err, sizeof err, "%s: out of memory detecting the faces of frame %ld",
                     rd->lo->sc.path, f.index);
            reader_finish(rd, err);
            return NULL;
        }
        s->dropped = rd->dropped_before + source_dropped(rd->src);
        rd->frames++;
        pthread_mutex_lock(&rd->mu);
        rd->count++;
        pthread_cond_broadcast(&rd->cv);
        pthread_mutex_unlock(&rd->mu);
    }
}

// Ask the reader to stop and wait for it (th NULL: it is not running).
static void reader_stop(Reader *rd, pthread_t *th) {
    if (!th) return;
    pthread_mutex_lock(&rd->mu);
    rd->stop = 1;
    pthread_cond_broadcast(&rd->cv);
    pthread_mutex_unlock(&rd->mu);
    pthread_join(*th, NULL);
}

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
    Reader rd = {.lo = &lo, .rec = NULL};
    int reader_on = 0;
    pthread_t reader;
    Recognizer rec = {0};
    Overlay *ov = NULL;
    Window *win = NULL;
    Image shown = {0}, panel = {0};
    const char *what = lo.sc.path;
    pthread_mutex_init(&rd.mu, NULL);
    pthread_cond_init(&rd.cv, NULL);
    rd.rec = &rec;
    if (!(rd.src = source_open(&lo.sc, err, sizeof err))) goto fail;
    if (recognizer_open(&rec, &lo.ao, err, sizeof err)) goto fail;
    for (int k = 0; k < NSLOTS; k++)
        if (!(rd.slot[k].faces = malloc((size_t)APP_MAX_FACES * ENS_FACE * ENS_FACE))) {
            snprintf(err, sizeof err, "out of memory");
            goto fail;
        }
    OverlayConfig oc = overlay_defaults();
    oc.bars = lo.ao.bars;
    oc.stats = lo.stats;
    if (!(ov = overlay_new(&oc, err, sizeof err))) goto fail;
    int w, h;
    source_size(rd.src, &w, &h);
    char title[256];
    snprintf(title, sizeof title, "emocam: %s", what);
    if (!(win = window_open(title, w, h, err, sizeof err))) goto fail;

    OverlayStats ost = {.dropped = 0};
    for (int k = 0; k < NSTAGES; k++) ost.stage[k] = STAGE_NAMES[k];
    ost.stage[ST_OUTPUT] = "show";
    double ms[NSTAGES] = {0}, t_prev = 0;
    long frames = 0;
    int paused = 0, help = 0, snaps = 0, quit = 0, snap_pending = 0, have = 0;
    volatile sig_atomic_t *stop = app_catch_signals();
    if (pthread_create(&reader, NULL, reader_main, &rd) != 0) {
        snprintf(err, sizeof err, "cannot start the reader thread");
        goto fail;
    }
    reader_on = 1;
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
            // the oldest frame the reader has ready, waiting at most 15 ms for one so that the
            // window keeps answering
            pthread_mutex_lock(&rd.mu);
            if (rd.count == 0 && !rd.done) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += 15 * 1000 * 1000;
                if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
                pthread_cond_timedwait(&rd.cv, &rd.mu, &until);
            }
            int ready = rd.count > 0, ended = rd.done && rd.count == 0, failed = rd.failed;
            if (failed) snprintf(err, sizeof err, "%s", rd.err);
            pthread_mutex_unlock(&rd.mu);
            if (ended && failed) goto fail;
            if (ended) {
                fprintf(stderr, "emocam: %s: end of the video\n", what);
                break;
            }
            if (!ready) continue;
            Slot *sl = &rd.slot[rd.head];   // head moves only here
            if (!(shown.px && shown.w == sl->img.w && shown.h == sl->img.h)) {
                image_free(&shown);
                if (image_new(&shown, sl->img.w, sl->img.h, 3)) {
                    snprintf(err, sizeof err, "%s: out of memory for a %dx%d frame", what, sl->img.w, sl->img.h);
                    goto fail;
                }
            }
            cv_paste(&shown, &sl->img, 0, 0);
            for (int k = ST_DECODE; k <= ST_CROP; k++) ms[k] = sl->ms[k];
            ost.dropped = sl->dropped;
            const Track *tracks;
            int n = recognizer_classify(&rec, sl->boxes, sl->faces, sl->n, &tracks, ms);
            pthread_mutex_lock(&rd.mu);   // the slot goes back to the reader
            rd.head = (rd.head + 1) % NSLOTS;
            rd.count--;
            pthread_cond_broadcast(&rd.cv);
            pthread_mutex_unlock(&rd.mu);
            if (n < 0) {
                snprintf(err, sizeof err, "%s: out of memory recognizing frame %ld", what, frames);
                goto fail;
            }
            double t1 = app_now();
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
    reader_stop(&rd, reader_on ? &reader : NULL);
    reader_on = 0;
    fprintf(stderr, "emocam: %ld frames shown, %ld dropped\n", frames, rd.dropped_before + source_dropped(rd.src));
    status = 0;
    goto done;
fail:
    fprintf(stderr, "emocam: %s\n", err);
done:
    reader_stop(&rd, reader_on ? &reader : NULL);
    for (int k = 0; k < NSLOTS; k++) {
        image_free(&rd.slot[k].img);
        free(rd.slot[k].faces);
    }
    pthread_mutex_destroy(&rd.mu);
    pthread_cond_destroy(&rd.cv);
    window_close(win);
    image_free(&shown);
    image_free(&panel);
    overlay_free(ov);
    recognizer_close(&rec);
    source_close(rd.src);
    return status;
}
