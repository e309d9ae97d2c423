// test_realtime.c: the realtime source plays a file at its own frame rate, like a camera with
// a driver queue of 4 buffers: a reader that keeps up gets every frame, on time; a reader
// that stalls for less than 4 frame periods loses nothing and catches up; a reader that is
// always too slow gets the oldest queued frame, and the frames that found the queue full are
// dropped (counted by source_dropped). The plain video source drops
// nothing however slow the reader. Needs ../shared/media (skips without it).
#include <math.h>
#include <sys/stat.h>
#include <time.h>

#include "source.h"
#include "testutil.h"

#define CLIP EMOCAM_SHARED "/media/video/pyfeat_single_face.mp4"   // 640x360, 30 fps, 72 frames

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void nap(double s) {
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static Source *open_realtime(char *err, size_t errlen) {
    SourceConfig c = {.kind = SOURCE_REALTIME, .path = CLIP};
    Source *s = source_open(&c, err, errlen);
    CHECK(s != NULL, "%s", err);
    return s;
}

static void test_keeps_up(void) {
    char err[1024];
    Source *s = open_realtime(err, sizeof err);
    if (!s) return;
    CHECK(fabs(source_fps(s) - 30) < 0.01, "fps %g", source_fps(s));
    enum { N = 15 };
    Frame f;
    double t0 = 0, late = 0;
    for (int i = 0; i < N; i++) {
        CHECK(source_read(s, &f, err, sizeof err) == 1, "%s", err);
        double now = now_s();
        if (i == 0) t0 = now;
        CHECK(f.index == i, "frame %ld, want %d", f.index, i);
        CHECK(fabs(f.time - i / 30.0) < 1e-3, "frame %d at %.4f s", i, f.time);
        // never early; late only by the decoding
        CHECK(now - t0 >= f.time - 1e-3, "frame %d came %.1f ms early", i, 1e3 * (f.time - (now - t0)));
        if (now - t0 - f.time > late) late = now - t0 - f.time;
    }
    CHECK(source_dropped(s) == 0, "a reader that keeps up lost %ld frames", source_dropped(s));
    printf("keeping up: %d frames over %.3f s (14/30 = 0.467), none dropped, at most %.1f ms late\n", N,
           now_s() - t0, 1e3 * late);
    source_close(s);
}

static void test_stall(void) {
    char err[1024];
    Source *s = open_realtime(err, sizeof err);
    if (!s) return;
    enum { N = 30 };
    Frame f;
    double t0 = 0, age_end = 1;
    for (int i = 0; i < N; i++) {
        CHECK(source_read(s, &f, err, sizeof err) == 1, "%s", err);
        double now = now_s();
        if (i == 0) t0 = now;
        CHECK(f.index == i, "after a stall: frame %ld, want %d", f.index, i);
        if (i == N - 1) age_end = now - t0 - f.time;
        if (i == 5) nap(0.09);   // 2.7 frame periods: the queue holds the frames due meanwhile
    }
    CHECK(source_dropped(s) == 0, "a 90 ms stall lost %ld frames", source_dropped(s));
    // caught up: the last frame is late only by decoding (a few ms, tens under ASan on a
    // loaded machine), where a reader that had not caught up would still be 90 ms behind
    CHECK(age_end < 0.045, "the reader did not catch up: the last frame was %.1f ms old", 1e3 * age_end);
    printf("a 90 ms stall: %d frames, none dropped, the last one %.1f ms old\n", N, 1e3 * age_end);
    source_close(s);
}

static void test_slow_reader(void) {
    char err[1024];
    SourceConfig c = {.kind = SOURCE_REALTIME, .path = CLIP};
    Source *s = source_open(&c, err, sizeof err);
    CHECK(s != NULL, "%s", err);
    if (!s) return;
    enum { N = 8 };
    const double work = 0.1;   // 3 frame periods of "work" after each frame
    Frame f;
    double t0 = 0, at[N];
    long prev = -1;
    for (int i = 0; i < N; i++) {
        CHECK(source_read(s, &f, err, sizeof err) == 1, "%s", err);
        double now = now_s();
        if (i == 0) t0 = now;
        at[i] = now - t0;
        // the oldest queued frame: due already; a full queue of 4 holds frames from up to 4
        // reads ago (as with a V4L2 camera, the new frames are the ones dropped). "4 reads
        // ago" is when that read happened, not 4 * work: on a loaded machine each nap
        // oversleeps, and the queue's frames are that much older
        double ago4 = at[i >= 4 ? i - 4 : 0];
        CHECK(f.time <= at[i] + 1e-3 && f.time > ago4 - 0.03,
              "read %d at %.3f s got the frame of %.3f s (the read 4 before was at %.3f s)", i,
              at[i], f.time, ago4);
        CHECK(f.index > prev, "indices go up");
        prev = f.index;
        nap(work);
    }
    long dropped = source_dropped(s);
    // 7 gaps of 100 ms are 21 periods, 7 frames read, 4 queued: about 10 dropped
    CHECK(dropped >= 7 && dropped <= 14, "%ld dropped by a reader 3x too slow", dropped);
    CHECK(f.index + 1 <= N + dropped + 4, "frame %ld after %d reads and %ld dropped", f.index, N, dropped);
    printf("slow reader: %d reads, last frame %ld, %ld dropped\n", N, f.index, dropped);
    source_close(s);
    // the plain video source gives every frame, however slow the reader
    c.kind = SOURCE_VIDEO;
    s = source_open(&c, err, sizeof err);
    CHECK(s != NULL, "%s", err);
    for (int i = 0; s && i < 4; i++) {
        CHECK(source_read(s, &f, err, sizeof err) == 1 && f.index == i, "video frame %d", i);
        nap(0.05);
    }
    CHECK(s && source_dropped(s) == 0, "the video source dropped frames");
    source_close(s);
}

int main(void) {
    struct stat st;
    if (stat(CLIP, &st) != 0) {
        printf("test_realtime: skipped: %s is absent\n", CLIP);
        return 77;
    }
    test_keeps_up();
    test_stall();
    test_slow_reader();
    return test_result("test_realtime");
}
