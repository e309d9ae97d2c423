// test_faces.c: face finding and tracking on the real media in ../shared (skips without it).
//
// - On each still, detector_find at scale 1 without equalisation returns exactly the boxes of
//   OpenCV's own detectMultiScale(gray, 1.1, 5, 0, 30x30) (cv_cascade_reference: imread,
//   cvtColor, a freshly loaded cascade), and the counts are media/README.md's table.
// - Tracking video/pyfeat_single_face.mp4 with the default detector gives one track id.
// - video/pyfeat_face_noface.mov: the man is found until frame 72, where the title card
//   starts, and no face is found in any frame after it.
// - The framing claim: a FER2013 face, upscaled 4x and padded, detected (default detector)
//   and cropped by face_crop48, comes back close to the original 48x48.
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "faces.h"
#include "source.h"
#include "testutil.h"

#define MEDIA EMOCAM_SHARED "/media"
#define FER EMOCAM_SHARED "/data/fer2013"

enum { MAXB = 64 };

static const struct {
    const char *file;
    int faces;   // media/README.md's "haar" column
} STILLS[] = {
    {"astronaut.png", 1},       {"pyfeat_single_face.jpg", 1}, {"fer_justin.jpg", 1},
    {"fr_two_people.jpg", 2},   {"pyfeat_multi_face.jpg", 4},  {"dlib_2007_007763.jpg", 4},
    {"dlib_2008_002470.jpg", 6},
};

static int box_cmp(const void *a, const void *b) {
    const Box *p = a, *q = b;
    if (p->y != q->y) return p->y < q->y ? -1 : 1;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    if (p->w != q->w) return p->w < q->w ? -1 : 1;
    return (p->h > q->h) - (p->h < q->h);
}

static void test_stills(void) {
    char err[1024], path[512];
    DetectorConfig plain = detector_defaults();
    plain.scale = 1;
    plain.equalize = 0;
    Detector *d = detector_open(&plain, err, sizeof err);
    Detector *live = detector_open(NULL, err, sizeof err);
    CHECK(d && live, "%s", err);
    if (!d || !live) return;
    for (size_t i = 0; i < sizeof STILLS / sizeof *STILLS; i++) {
        snprintf(path, sizeof path, MEDIA "/stills/%s", STILLS[i].file);
        Box ref[MAXB], got[MAXB];
        int nref = cv_cascade_reference(DETECTOR_CASCADE, path, 1.1, 5, 30, ref, MAXB, err, sizeof err);
        CHECK(nref == STILLS[i].faces, "%s: OpenCV finds %d faces, README says %d (%s)", STILLS[i].file,
              nref, STILLS[i].faces, nref < 0 ? err : "");
        // ours: through the image source and the detector
        SourceConfig sc = {.kind = SOURCE_IMAGES, .path = path};
        Source *s = source_open(&sc, err, sizeof err);
        Frame f;
        CHECK(s && source_read(s, &f, err, sizeof err) == 1, "%s", err);
        if (!s) continue;
        int n = detector_find(d, f.image, got, MAXB);
        CHECK(n == nref, "%s: detector_find at scale 1 finds %d, detectMultiScale %d", STILLS[i].file, n, nref);
        // the same boxes: OpenCV's parallel search returns them in no fixed order
        if (n > 0) qsort(got, (size_t)(n < MAXB ? n : MAXB), sizeof(Box), box_cmp);
        if (nref > 0) qsort(ref, (size_t)(nref < MAXB ? nref : MAXB), sizeof(Box), box_cmp);
        for (int k = 0; k < n && k < nref; k++)
            CHECK(!memcmp(&got[k], &ref[k], sizeof(Box)), "%s: box %d (%d %d %d %d) != (%d %d %d %d)",
                  STILLS[i].file, k, got[k].x, got[k].y, got[k].w, got[k].h, ref[k].x, ref[k].y, ref[k].w, ref[k].h);
        // the live settings (auto scale, equalised), for the record
        int nl = detector_find(live, f.image, got, MAXB);
        printf("%-24s %dx%d  haar %d  detector_find(scale 1) %d  live (scale %.2f, equalised) %d\n",
               STILLS[i].file, f.image->w, f.image->h, nref, n, detector_scale(live, f.image->w), nl);
        source_close(s);
    }
    detector_close(d);
    detector_close(live);
}

static void test_single_face_track(void) {
    char err[1024];
    SourceConfig sc = {.kind = SOURCE_VIDEO, .path = MEDIA "/video/pyfeat_single_face.mp4"};
    Source *s = source_open(&sc, err, sizeof err);
    Detector *d = detector_open(NULL, err, sizeof err);
    Tracker *t = tracker_new(NULL);
    CHECK(s && d && t, "%s", err);
    if (!s || !d || !t) return;
    Frame f;
    Box b[MAXB];
    int frames = 0, with_face = 0, ids = 0, id = -1, r;
    while ((r = source_read(s, &f, err, sizeof err)) == 1) {
        int n = detector_find(d, f.image, b, MAXB);
        const Track *tr;
        int m = tracker_update(t, b, NULL, n, &tr);
        CHECK(m == n, "tracker_update %d of %d", m, n);
        frames++;
        with_face += n > 0;
        for (int i = 0; i < m; i++)
            if (tr[i].id != id) ids++, id = tr[i].id;
    }
    CHECK(r == 0, "%s", err);
    CHECK(frames == 72, "%d frames", frames);
    CHECK(with_face >= 70, "a face in %d of %d frames", with_face, frames);
    CHECK(ids == 1 && id == 1, "%d track ids (last %d)", ids, id);
    printf("pyfeat_single_face.mp4: %d frames, a face in %d, %d track id(s)\n", frames, with_face, ids);
    source_close(s);
    detector_close(d);
    tracker_free(t);
}

static void test_face_then_title(void) {
    char err[1024];
    SourceConfig sc = {.kind = SOURCE_VIDEO, .path = MEDIA "/video/pyfeat_face_noface.mov"};
    Source *s = source_open(&sc, err, sizeof err);
    Detector *d = detector_open(NULL, err, sizeof err);
    CHECK(s && d, "%s", err);
    if (!s || !d) return;
    Frame f;
    Box b[MAXB];
    int frames = 0, before = 0, after = 0, last = -1, r;
    enum { CARD = 72 };   // the title card's first frame (at 2.4 s)
    while ((r = source_read(s, &f, err, sizeof err)) == 1) {
        int n = detector_find(d, f.image, b, MAXB);
        CHECK(n >= 0, "detector_find");
        if (n > 0) last = (int)f.index;
        if (f.index < CARD) before += n > 0;
        else after += n;
        frames++;
    }
    CHECK(r == 0, "%s", err);
    CHECK(frames == 169, "%d frames", frames);
    CHECK(before >= CARD * 9 / 10, "a face in only %d of the first %d frames", before, CARD);
    CHECK(after == 0 && last == CARD - 1, "%d detections in frames %d..%d; the last face is in frame %d",
          after, CARD, frames - 1, last);
    printf("pyfeat_face_noface.mov: faces in %d of frames 0..%d, the last in frame %d; %d detections in frames %d..%d\n",
           before, CARD - 1, last, after, CARD, frames - 1);
    source_close(s);
    detector_close(d);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// The first n files of a folder, by name (returns how many).
static int list_dir(const char *dir, char **names, int n) {
    DIR *d = opendir(dir);
    int k = 0, cap = 4096;
    char **all = malloc(sizeof *all * (size_t)cap);
    struct dirent *e;
    while (d && all && (e = readdir(d)) && k < cap)
        if (e->d_name[0] != '.') all[k++] = strdup(e->d_name);
    if (d) closedir(d);
    if (!all) return 0;
    qsort(all, (size_t)k, sizeof *all, cmp_str);
    int m = k < n ? k : n;
    for (int i = 0; i < k; i++) {
        if (i < m) names[i] = all[i];
        else free(all[i]);
    }
    free(all);
    return m;
}

// A 48x48 face, 4x up (bilinear), on a canvas padded by pad on every side with its edge
// pixels repeated (BORDER_REPLICATE): a frame with the face in it, as a camera would show.
static int face_frame(const Image *face, int up, int pad, Image *canvas) {
    Image big = {0};
    if (cv_resize(face, &big, face->w * up, face->h * up, CV_RESIZE_LINEAR) ||
        image_new(canvas, big.w + 2 * pad, big.h + 2 * pad, 3)) {
        image_free(&big);
        return -1;
    }
    for (int y = 0; y < canvas->h; y++) {
        int sy = y < pad ? 0 : y - pad >= big.h ? big.h - 1 : y - pad;
        for (int x = 0; x < canvas->w; x++) {
            int sx = x < pad ? 0 : x - pad >= big.w ? big.w - 1 : x - pad;
            unsigned char *q = image_row(canvas, y) + 3 * x;
            q[0] = q[1] = q[2] = image_row(&big, sy)[sx];
        }
    }
    image_free(&big);
    return 0;
}

static double mad48(const uint8_t *a, const uint8_t *b) {
    double s = 0;
    for (int p = 0; p < 48 * 48; p++) s += abs(a[p] - b[p]);
    return s / (48 * 48);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n ? v[n / 2] : NAN;
}

// The framing claim (data/fer2013/README.md): PublicTest faces, 4x up and padded, through the
// live detector and face_crop48, against the original 48x48. Mean absolute differences are
// put beside two yardsticks: the crop of the exact face square (what the crop pipeline itself
// loses: resampling, re-equalising) and a different face (what unrelated faces differ by).
static void test_framing(void) {
    static const char *CLASSES[] = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};
    enum { PER_CLASS = 12, N = 7 * PER_CLASS, UP = 4, PAD = 96 };
    char err[1024], dir[512], path[1024];
    Detector *d = detector_open(NULL, err, sizeof err);
    CHECK(d != NULL, "%s", err);
    if (!d) return;
    static uint8_t orig[N][48 * 48];
    double mad0[N], mad25[N], ideal[N], other[N], side[N], dx[N], dy[N];
    int tried = 0, found = 0;
    for (int c = 0; c < 7; c++) {
        snprintf(dir, sizeof dir, FER "/test/%s", CLASSES[c]);
        char *names[PER_CLASS];
        int n = list_dir(dir, names, PER_CLASS);
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            free(names[i]);
            Image face = {0}, canvas = {0};
            CHECK(cv_imread(path, 1, &face, err, sizeof err) == 0 && face.w == 48 && face.h == 48, "%s", err);
            if (!face.px || face_frame(&face, UP, PAD, &canvas)) {
                image_free(&face);
                continue;
            }
            memcpy(orig[tried], face.px, 48 * 48);
            uint8_t crop[48 * 48], crop25[48 * 48];
            Box exact = {PAD, PAD, 48 * UP, 48 * UP};
            CHECK(face_crop48(&canvas, exact, 0, crop) == 0, "crop");
            ideal[tried] = mad48(crop, orig[tried]);
            if (tried > 0) other[tried - 1] = mad48(orig[tried], orig[tried - 1]);
            tried++;
            Box b[MAXB];
            int nb = detector_find(d, &canvas, b, MAXB);
            int best = -1;   // the largest box
            for (int k = 0; k < nb; k++)
                if (best < 0 || b[k].w > b[best].w) best = k;
            if (best >= 0) {
                CHECK(face_crop48(&canvas, b[best], 0, crop) == 0, "crop");
                CHECK(face_crop48(&canvas, b[best], 0.25, crop25) == 0, "crop with margin");
                mad0[found] = mad48(crop, face.px);
                mad25[found] = mad48(crop25, face.px);
                side[found] = (double)b[best].w / (48 * UP);
                dx[found] = (b[best].x + b[best].w / 2.0 - PAD - 24 * UP) / UP;   // in 48x48 pixels
                dy[found] = (b[best].y + b[best].h / 2.0 - PAD - 24 * UP) / UP;
                found++;
            }
            image_free(&face);
            image_free(&canvas);
        }
    }
    detector_close(d);
    CHECK(tried == N, "read %d faces", tried);
    CHECK(found >= tried * 2 / 3, "detected %d of %d", found, tried);
    if (found < 3) return;
    double p10 = 0, p90 = 0;
    qsort(side, (size_t)found, sizeof *side, cmp_dbl);
    p10 = side[found / 10], p90 = side[found * 9 / 10];
    double mside = median(side, found), mdx = median(dx, found), mdy = median(dy, found);
    double m0 = median(mad0, found), m25 = median(mad25, found), mi = median(ideal, tried),
           mo = median(other, tried - 1);
    printf("FER2013 framing: %d of %d faces detected; box side / face side median %.2f (p10 %.2f, p90 %.2f), "
           "centre off by %.1f, %.1f px of 48\n", found, tried, mside, p10, p90, mdx, mdy);
    printf("  crop vs the original, median mean |diff|: %.1f at the detected box (margin 0), %.1f with margin "
           "0.25; yardsticks: %.1f for the exact face square, %.1f between different faces\n", m0, m25, mi, mo);
    CHECK(mside > 0.88 && mside < 1.08, "median box side %.2f of the face (README: 0.98)", mside);
    CHECK(fabs(mdx) < 2 && fabs(mdy) < 2, "box centre off by %.1f, %.1f px", mdx, mdy);
    CHECK(mi < 10, "the crop pipeline alone changes the face by %.1f", mi);
    CHECK(m0 < 0.65 * mo, "detected crops (%.1f) are not much closer to their face than other faces are (%.1f)", m0, mo);
    CHECK(m0 < m25, "margin 0 (%.1f) should frame like FER2013 better than margin 0.25 (%.1f)", m0, m25);
}

int main(void) {
    struct stat st;
    if (stat(MEDIA "/stills", &st) != 0 || stat(FER "/test", &st) != 0) {
        printf("test_faces: skipped: %s/media or data/fer2013 is absent\n", EMOCAM_SHARED);
        return 77;
    }
    test_stills();
    test_single_face_track();
    test_face_then_title();
    test_framing();
    return test_result("test_faces");
}
