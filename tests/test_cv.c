// test_cv.c: the OpenCV wrapper: PNG and JPEG files (round trip, atomic write, errors naming
// the file), resize, channel conversion, paste with clipping, blending, colour maps, and that
// the drawing primitives draw where they should.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cv.h"
#include "testutil.h"

static void test_files(void) {
    char path[512], err[512];
    Image a, b;
    CHECK(image_new(&a, 37, 21, 3) == 0 && a.stride == 37 * 3, "image_new");
    for (int i = 0; i < 37 * 21 * 3; i++) a.px[i] = (unsigned char)(i * 7);
    snprintf(path, sizeof path, "%s/a.png", test_tmpdir());
    CHECK(cv_imwrite(path, &a, 0, err, sizeof err) == 0, "%s", err);
    CHECK(cv_imread(path, 3, &b, err, sizeof err) == 0, "%s", err);
    CHECK(b.w == 37 && b.h == 21 && b.ch == 3 && !memcmp(a.px, b.px, (size_t)37 * 21 * 3), "PNG round trip");
    image_free(&b);
    CHECK(cv_imread(path, 1, &b, err, sizeof err) == 0 && b.ch == 1 && b.w == 37, "decode to gray");
    image_free(&b);
    // JPEG: close, not exact
    Image g;
    CHECK(image_new(&g, 48, 48, 1) == 0, "new");
    for (int i = 0; i < 48 * 48; i++) g.px[i] = (unsigned char)(100 + (i % 48));
    snprintf(path, sizeof path, "%s/g.JPG", test_tmpdir());
    CHECK(cv_imwrite(path, &g, 95, err, sizeof err) == 0, "%s", err);
    CHECK(cv_imread(path, 1, &b, err, sizeof err) == 0 && b.w == 48, "%s", err);
    int worst = 0;
    for (int i = 0; i < 48 * 48 && b.px; i++) worst = abs(b.px[i] - g.px[i]) > worst ? abs(b.px[i] - g.px[i]) : worst;
    CHECK(worst <= 4, "JPEG round trip off by %d", worst);
    image_free(&b);
    // errors name the file
    snprintf(path, sizeof path, "%s/a.gif", test_tmpdir());
    CHECK(cv_imwrite(path, &a, 0, err, sizeof err) == -1 && strstr(err, "a.gif: unknown image type"), "%s", err);
    snprintf(path, sizeof path, "%s/nofolder/a.png", test_tmpdir());
    CHECK(cv_imwrite(path, &a, 0, err, sizeof err) == -1 && strstr(err, "nofolder/a.png: cannot write"), "%s", err);
    snprintf(path, sizeof path, "%s/missing.png", test_tmpdir());
    CHECK(cv_imread(path, 1, &b, err, sizeof err) == -1 && strstr(err, "missing.png: cannot open") && !b.px, "%s", err);
    snprintf(path, sizeof path, "%s/junk.png", test_tmpdir());
    FILE *f = fopen(path, "wb");
    fputs("not a png", f);
    fclose(f);
    CHECK(cv_imread(path, 1, &b, err, sizeof err) == -1 && strstr(err, "junk.png: not an image"), "%s", err);
    CHECK(cv_imread(test_tmpdir(), 1, &b, err, sizeof err) == -1 && strstr(err, "not a regular file"), "%s", err);
    image_free(&a);
    image_free(&g);
}

static void test_geometry(void) {
    Image a, b, c;
    CHECK(image_new(&a, 96, 64, 1) == 0, "new");
    memset(a.px, 80, 96 * 64);
    CHECK(cv_resize(&a, &b, 48, 32, CV_RESIZE_AREA) == 0 && b.w == 48 && b.h == 32 && b.px[5] == 80, "area");
    image_free(&b);
    CHECK(cv_resize(&a, &b, 200, 100, CV_RESIZE_LINEAR) == 0 && b.w == 200 && b.px[999] == 80, "linear");
    image_free(&b);
    CHECK(cv_resize(&a, &b, 10, 10, 17) == -1 && !b.px, "bad interpolation");
    CHECK(cv_resize(&a, &b, 0, 10, CV_RESIZE_AREA) == -1, "bad size");
    CHECK(cv_convert(&a, &b, 3) == 0 && b.ch == 3 && b.px[0] == 80 && b.px[2] == 80, "gray to BGR");
    CHECK(cv_convert(&b, &c, 1) == 0 && c.ch == 1 && c.px[0] == 80, "BGR to gray");
    image_free(&c);
    // paste clips; blend mixes
    Image small;
    CHECK(image_new(&small, 10, 10, 1) == 0, "new");
    memset(small.px, 200, 100);
    CHECK(cv_paste(&b, &small, 90, -5) == 0, "paste clipped");
    CHECK(image_row(&b, 0)[90 * 3] == 200 && image_row(&b, 5)[90 * 3] == 80 && image_row(&b, 4)[95 * 3 + 2] == 200, "paste place");
    CHECK(cv_paste(&b, &small, 500, 500) == 0, "paste outside");
    Image white;
    CHECK(image_new(&white, 96, 64, 1) == 0, "new");
    memset(white.px, 255, 96 * 64);
    CHECK(cv_blend(&a, &white, 0.5) == 0 && abs(a.px[100] - 168) <= 1, "blend %d", a.px[100]);
    CHECK(cv_blend(&a, &small, 0.5) == -1, "blend size mismatch");
    // colour maps
    CHECK(cv_colormap(&a, &c, CV_CMAP_JET) == 0 && c.ch == 3 && c.w == 96, "jet");
    image_free(&c);
    CHECK(cv_colormap(&a, &c, CV_CMAP_GRAY) == 0 && c.ch == 3 && c.px[0] == a.px[0], "gray map");
    image_free(&c);
    float cam[4] = {0, 1, 2, 3};
    CHECK(cv_heatmap(cam, 2, 2, 0, 3, CV_CMAP_INFERNO, 48, 48, &c) == 0 && c.w == 48 && c.ch == 3, "heatmap");
    image_free(&c);
    image_free(&a);
    image_free(&b);
    image_free(&small);
    image_free(&white);
}

static long sum(const Image *im, int x0, int y0, int x1, int y1) {
    long s = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0 * im->ch; x < x1 * im->ch; x++) s += image_row(im, y)[x];
    return s;
}

static void test_drawing(void) {
    Image im;
    CHECK(image_new(&im, 200, 100, 3) == 0, "new");
    CHECK(cv_fill_rect(&im, 10, 10, 20, 20, 0xff0000) == 0, "fill");
    CHECK(image_row(&im, 15)[15 * 3 + 2] == 255 && image_row(&im, 15)[15 * 3] == 0, "red is BGR's third byte");
    CHECK(sum(&im, 0, 0, 10, 100) == 0, "fill spilled");
    CHECK(cv_fill_rect(&im, -50, -50, 1000, 5, CV_WHITE) == 0, "clipped fill");
    CHECK(cv_draw_rect(&im, 50, 50, 30, 30, CV_WHITE, 1) == 0 && sum(&im, 55, 55, 75, 75) == 0 && sum(&im, 50, 50, 80, 51) > 0, "outline");
    CHECK(cv_draw_line(&im, 100, 10, 190, 10, 0x00ff00, 2) == 0 && sum(&im, 100, 8, 190, 13) > 0, "line");
    float pts[6] = {100, 40, 150, 90, 190, 40};
    CHECK(cv_draw_polyline(&im, pts, 3, 1, CV_WHITE, 1) == 0 && sum(&im, 148, 85, 152, 92) > 0, "polyline");
    CHECK(cv_draw_circle(&im, 30, 70, 8, CV_WHITE, -1) == 0 && image_row(&im, 70)[30 * 3] == 255, "circle");
    int w = 0, h = 0, base = 0;
    CHECK(cv_text_size("happy", 1.0, 2, &w, &h, &base) == 0 && w > 50 && h > 10 && base > 0, "text size %d %d %d", w, h, base);
    long before = sum(&im, 0, 60, 200, 100);
    CHECK(cv_draw_text(&im, "happy", 60, 95, 0.8, CV_WHITE, 1) == 0 && sum(&im, 0, 60, 200, 100) > before, "text");
    CHECK(cv_draw_rect(&im, 0, 0, 5, 5, CV_WHITE, 0) == -1, "thickness 0");
    Image g;
    CHECK(image_new(&g, 20, 20, 1) == 0 && cv_fill_rect(&g, 0, 0, 20, 20, 0xff0000) == 0 && g.px[0] == 76, "red on gray is its luma (%d)", g.px[0]);
    image_free(&g);
    image_free(&im);
    Image bad = {0};
    CHECK(cv_fill_rect(&bad, 0, 0, 1, 1, 0) == -1, "an empty image is refused");
}

int main(void) {
    test_files();
    test_geometry();
    test_drawing();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmpdir());
    if (!test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", test_tmpdir());
    return test_result("test_cv");
}
