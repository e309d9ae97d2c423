// test_render.c: the render side without a display or the shared media.
//   - the overlay draws the box in the label's colour, the label tag, the 7 bars (each the
//     length of its probability) and the stats; --no-bars leaves the side of the face alone;
//     faces at the edges, tiny and huge frames, gray frames, NaN probabilities and faces
//     without probabilities draw without crashing; a missing font is a one-line error;
//   - output files appear only when committed, and an aborted one leaves nothing;
//   - the video writer's files read back with the same size and frame count.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apputil.h"
#include "model.h"
#include "outfile.h"
#include "overlay.h"
#include "source.h"
#include "testutil.h"

static int near(const unsigned char *p, uint32_t rgb, int tol) {
    int r = (rgb >> 16) & 255, g = (rgb >> 8) & 255, b = rgb & 255;
    return abs(p[0] - b) <= tol && abs(p[1] - g) <= tol && abs(p[2] - r) <= tol;
}

// Pixels of colour rgb (within tol) in the rectangle, clipped.
static int count_colour(const Image *im, int x, int y, int w, int h, uint32_t rgb, int tol) {
    int n = 0;
    for (int yy = y < 0 ? 0 : y; yy < y + h && yy < im->h; yy++)
        for (int xx = x < 0 ? 0 : x; xx < x + w && xx < im->w; xx++)
            n += near(image_row(im, yy) + 3 * xx, rgb, tol);
    return n;
}

static void fill(Image *im, unsigned char v) {
    for (int y = 0; y < im->h; y++) memset(image_row(im, y), v, (size_t)im->w * im->ch);
}

static Track make_track(int id, Box b, int label) {
    Track t = {.id = id, .box = b, .label = label, .age = 1};
    for (int k = 0; k < OVERLAY_CLASSES; k++) t.probs[k] = t.raw[k] = 0.02f;
    if (label >= 0) t.probs[label] = t.raw[label] = 0.88f;
    return t;
}

static void test_overlay_draw(void) {
    char err[EMO_ERRLEN];
    Overlay *o = overlay_new(NULL, err, sizeof err);
    CHECK(o != NULL, "overlay_new: %s", err);
    if (!o) return;
    Image im;
    CHECK(image_new(&im, 640, 360, 3) == 0, "image_new");
    fill(&im, 128);
    Box b = {200, 90, 180, 180};
    Track t = make_track(1, b, 3);   // happy
    CHECK(overlay_draw(o, &im, &t, 1, NULL) == 0, "overlay_draw");
    uint32_t happy = overlay_class_colour(3);
    // the box: its left and bottom edges in the label's colour
    int left = count_colour(&im, b.x - 3, b.y + 20, 6, b.h - 40, happy, 2);
    int bottom = count_colour(&im, b.x + 20, b.y + b.h - 3, b.w - 40, 6, happy, 2);
    CHECK(left >= (b.h - 40) * 2, "left edge: %d pixels of the label colour", left);
    CHECK(bottom >= (b.w - 40) * 2, "bottom edge: %d pixels of the label colour", bottom);
    // the tag above the box: filled with the label's colour, with dark text in it
    int tag = count_colour(&im, b.x, b.y - 30, b.w, 28, happy, 2);
    int ink = count_colour(&im, b.x, b.y - 30, b.w, 28, 0x000000, 60);
    CHECK(tag > 1000, "label tag: %d pixels of the label colour", tag);
    CHECK(ink > 50, "label tag: %d pixels of text", ink);
    // the bars, right of the box: a long amber one (happy 88%), short ones for the others
    int right = b.x + b.w + 4;
    int amber = count_colour(&im, right, b.y - 5, 640 - right, b.h, happy, 2);
    int track = count_colour(&im, right, b.y - 5, 640 - right, b.h, 0x404040, 2);
    int others = 0;
    for (int k = 0; k < OVERLAY_CLASSES; k++)
        if (k != 3) others += count_colour(&im, right, b.y - 5, 640 - right, b.h, overlay_class_colour(k), 2);
    CHECK(amber > 200, "happy bar: %d pixels", amber);
    CHECK(track > 6 * 50, "bar tracks: %d pixels", track);
    CHECK(others < amber / 4, "other bars (2%% each) should be short: %d vs %d", others, amber);

    // without bars the right of the box stays as it was
    fill(&im, 128);
    overlay_set_bars(o, 0);
    CHECK(overlay_bars(o) == 0, "bars off");
    overlay_draw(o, &im, &t, 1, NULL);
    int untouched = count_colour(&im, right + 4, b.y + 20, 640 - right - 4, b.h - 20, 0x808080, 0);
    CHECK(untouched == (640 - right - 4) * (b.h - 20), "no bars: %d of %d pixels untouched", untouched,
          (640 - right - 4) * (b.h - 20));
    overlay_set_bars(o, 1);

    // stats only when asked for, in the top-left corner
    OverlayStats st = {.fps = 29.97, .dropped = 3, .stage = {"decode", "detect", "crop", "classify", NULL},
                       .ms = {1, 2, 3, 4}};
    fill(&im, 128);
    overlay_draw(o, &im, NULL, 0, &st);
    CHECK(count_colour(&im, 0, 0, 100, 40, 0x808080, 0) == 100 * 40, "stats drawn though off");
    overlay_free(o);
    OverlayConfig c = overlay_defaults();
    c.stats = 1;
    o = overlay_new(&c, err, sizeof err);
    CHECK(o != NULL, "overlay_new: %s", err);
    overlay_draw(o, &im, NULL, 0, &st);
    int shaded = count_colour(&im, 0, 0, 100, 40, 0x808080, 0);
    CHECK(shaded < 100 * 40 / 2, "stats panel: %d of 4000 pixels untouched", shaded);
    overlay_free(o);
    image_free(&im);
}

static void test_overlay_extremes(void) {
    char err[EMO_ERRLEN];
    Overlay *o = overlay_new(NULL, err, sizeof err);
    if (!o) return;
    const int sizes[][2] = {{16, 16}, {48, 48}, {320, 180}, {3840, 2160}};
    for (int s = 0; s < 4; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        Image im;
        CHECK(image_new(&im, w, h, 3) == 0, "image_new %dx%d", w, h);
        Track t[6] = {
            make_track(1, (Box){0, 0, w / 2, h / 2}, 0),                  // top-left corner
            make_track(2, (Box){w - w / 3, h - h / 3, w / 3, h / 3}, 5),  // bottom-right
            make_track(3, (Box){-20, -20, w + 40, h + 40}, 6),            // bigger than the frame
            make_track(4, (Box){w / 2, h / 2, 1, 1}, 1),                  // one pixel
            make_track(5, (Box){w / 4, h / 4, w / 4, h / 4}, -1),         // no probabilities
            make_track(6, (Box){w / 3, h / 3, w / 5, h / 5}, 2),
        };
        for (int k = 0; k < OVERLAY_CLASSES; k++) t[5].probs[k] = NAN;
        OverlayStats st = {.fps = 1e9, .dropped = 1L << 40, .stage = {"decode", "detect", "crop", "classify", "draw", "encode", NULL}};
        CHECK(overlay_draw(o, &im, t, 6, &st) == 0, "draw %dx%d", w, h);
        const char *const lines[] = {"title", "a line", "another line that is rather long for a small frame"};
        CHECK(overlay_panel(o, &im, lines, 3) == 0, "panel %dx%d", w, h);
        image_free(&im);
        // the same on a gray frame
        CHECK(image_new(&im, w, h, 1) == 0, "image_new gray");
        CHECK(overlay_draw(o, &im, t, 6, &st) == 0, "draw gray %dx%d", w, h);
        image_free(&im);
    }
    Image none = {0};
    CHECK(overlay_draw(o, &none, NULL, 0, NULL) == -1, "an empty image is refused");
    overlay_free(o);
    overlay_free(NULL);

    OverlayConfig c = overlay_defaults();
    c.font = "/nonexistent/font.ttf";
    err[0] = 0;
    o = overlay_new(&c, err, sizeof err);
    CHECK(o == NULL, "a missing font is refused");
    CHECK(strstr(err, "/nonexistent/font.ttf") && !strchr(err, '\n'), "message names the font: %s", err);
    overlay_free(o);
    CHECK(!strcmp(overlay_class_name(0), "angry") && !strcmp(overlay_class_name(6), "neutral"), "names");
}

static void test_outfile(void) {
    char err[EMO_ERRLEN];
    OutFile f;
    const char *path = tmp_path("rows.csv");
    CHECK(outfile_open(&f, path, 1, err, sizeof err) == 0, "outfile_open: %s", err);
    fprintf(f.f, "a,b\n1,2\n");
    CHECK(!file_exists(path), "not under the final name before the commit");
    CHECK(count_entries(test_tmpdir(), ".tmp") == 1, "one temporary file");
    CHECK(outfile_commit(&f, err, sizeof err) == 0, "commit: %s", err);
    char *s = slurp(path, NULL);
    CHECK(s && !strcmp(s, "a,b\n1,2\n"), "content");
    free(s);
    CHECK(count_entries(test_tmpdir(), ".tmp") == 0, "no temporary file left");

    const char *gone = tmp_path("gone.jsonl");
    CHECK(outfile_open(&f, gone, 1, err, sizeof err) == 0, "outfile_open: %s", err);
    fprintf(f.f, "{}\n");
    outfile_abort(&f);
    CHECK(!file_exists(gone) && count_entries(test_tmpdir(), ".tmp") == 0, "abort leaves nothing");

    CHECK(outfile_open(&f, "/nonexistent-dir/x.csv", 1, err, sizeof err) == -1, "unwritable folder");
    CHECK(strstr(err, "/nonexistent-dir/x.csv") != NULL, "message names the file: %s", err);
    CHECK(outfile_open(&f, test_tmpdir(), 1, err, sizeof err) == -1, "a folder is not a file");
    OutFile z = {0};
    outfile_abort(&z);
}

static void test_writer_roundtrip(void) {
    const char *path = tmp_path("clip.mp4");
    CHECK(make_video(path, 96, 64, 12) == 0, "make_video");
    char err[EMO_ERRLEN];
    SourceConfig sc = {.kind = SOURCE_VIDEO, .path = path};
    Source *s = source_open(&sc, err, sizeof err);
    CHECK(s != NULL, "source_open: %s", err);
    if (!s) return;
    int n = 0, w = 0, h = 0;
    Frame f;
    while (source_read(s, &f, err, sizeof err) == 1) {
        w = f.image->w;
        h = f.image->h;
        n++;
    }
    CHECK(n == 12 && w == 96 && h == 64, "read back %d frames of %dx%d", n, w, h);
    source_close(s);

    CHECK(cv_writer_open("/nonexistent-dir/a.mp4", 96, 64, 25, NULL, err, sizeof err) == NULL, "unwritable");
    CHECK(strstr(err, "/nonexistent-dir/a.mp4") != NULL, "message names the file: %s", err);
    CHECK(cv_writer_open(tmp_path("b.mp4"), 0, 64, 25, NULL, err, sizeof err) == NULL, "bad size");
    CHECK(cv_writer_open(tmp_path("c.mp4"), 96, 64, 25, "toolong", err, sizeof err) == NULL, "bad fourcc");
    CvWriter *wr = cv_writer_open(tmp_path("d.mp4"), 96, 64, 25, NULL, err, sizeof err);
    Image other;
    image_new(&other, 50, 50, 3);
    CHECK(wr && cv_writer_write(wr, &other) == -1, "a frame of another size is refused");
    image_free(&other);
    CHECK(cv_writer_close(wr) == 0, "close");
    CHECK(cv_writer_close(NULL) == 0, "close NULL");
    remove(path);
    remove(tmp_path("d.mp4"));
}

int main(void) {
    test_overlay_draw();
    test_overlay_extremes();
    test_outfile();
    test_writer_roundtrip();
    rmdir(test_tmpdir());
    return test_result("test_render");
}
