// test_capture.c: frame sources and detector set-up on files made here (no ../shared needed).
// Every bad input gives one line naming the file: a zero-byte and a text "video", a missing
// file, a folder given as a video, an empty folder, a broken image in a folder, a zero-sized
// image, a missing or invalid cascade, a missing camera and a device that is not a camera.
// Image folders are read sorted by name; 16-bit and 4-channel images convert to 8-bit BGR.
// face_crop48 gives 48x48 equalised pixels and clips boxes to the frame.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faces.h"
#include "source.h"
#include "testutil.h"

static char *tmp(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
}

// err is one line, names what, and holds want.
static void check_error(const char *err, const char *what, const char *want) {
    CHECK(strstr(err, what) && strstr(err, want) && !strchr(err, '\n'), "error '%s' should name %s and say '%s'",
          err, what, want);
}

static void open_fails(SourceKind kind, const char *path, const char *want) {
    char err[1024] = "";
    SourceConfig c = {.kind = kind, .path = path};
    Source *s = source_open(&c, err, sizeof err);
    CHECK(s == NULL, "%s opened", path);
    source_close(s);
    check_error(err, path, want);
    printf("  %s\n", err);
}

static void test_bad_videos(void) {
    char empty[512], text[512];
    snprintf(empty, sizeof empty, "%s", tmp("empty.mp4"));
    snprintf(text, sizeof text, "%s", tmp("notes.mp4"));
    write_file(empty, "", 0);
    const char *words = "this is not a video, only text\n";
    write_file(text, words, strlen(words));
    for (int k = SOURCE_VIDEO; k <= SOURCE_REALTIME; k++) {
        open_fails(k, empty, "empty file");
        open_fails(k, text, "not a video");
        open_fails(k, tmp("missing.mp4"), "cannot open: No such file");
        open_fails(k, test_tmpdir(), "is a folder");
    }
}

static void test_bad_images(void) {
    char dir[512], junkdir[512], path[1024];
    snprintf(dir, sizeof dir, "%s", tmp("nothing"));
    snprintf(junkdir, sizeof junkdir, "%s", tmp("junk"));
    CHECK(mkdir(dir, 0755) == 0 && mkdir(junkdir, 0755) == 0, "mkdir");
    open_fails(SOURCE_IMAGES, dir, "no image files");
    write_file(tmp("nothing/readme.txt"), "x", 1);   // not an image: still none
    open_fails(SOURCE_IMAGES, dir, "no image files");
    open_fails(SOURCE_IMAGES, tmp("missing.png"), "cannot open");
    write_file(tmp("zero.png"), "", 0);
    open_fails(SOURCE_IMAGES, tmp("zero.png"), "empty file");
    // a zero-sized image (a valid PGM header, 0x0)
    write_file(tmp("zero_size.pgm"), "P5\n0 0\n255\n", 11);
    open_fails(SOURCE_IMAGES, tmp("zero_size.pgm"), "not an image");
    // a good image then a text file named .png: the second read fails, naming it
    Image a;
    CHECK(image_new(&a, 8, 6, 3) == 0, "new");
    char err[1024];
    snprintf(path, sizeof path, "%s/a.png", junkdir);
    CHECK(cv_imwrite(path, &a, 0, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/b.png", junkdir);
    write_file(path, "text", 4);
    SourceConfig c = {.kind = SOURCE_IMAGES, .path = junkdir};
    Source *s = source_open(&c, err, sizeof err);
    Frame f;
    CHECK(s && source_frames(s) == 2, "%s", err);
    CHECK(s && source_read(s, &f, err, sizeof err) == 1 && f.image->w == 8, "first image");
    CHECK(s && source_read(s, &f, err, sizeof err) == -1, "a text file read as an image");
    check_error(err, path, "not an image");
    source_close(s);
    image_free(&a);
}

static void test_images(void) {
    char dir[512], err[1024];
    snprintf(dir, sizeof dir, "%s", tmp("imgs"));
    CHECK(mkdir(dir, 0755) == 0, "mkdir");
    // names out of order, different sizes, a gray PNG, and files that are not images
    const char *names[] = {"c.png", "a.jpg", "b10.png", "b2.png"};
    int widths[] = {30, 10, 40, 20};
    for (int i = 0; i < 4; i++) {
        Image im;
        CHECK(image_new(&im, widths[i], 12, i == 2 ? 1 : 3) == 0, "new");
        memset(im.px, 40 * (i + 1), (size_t)im.h * im.stride);
        CHECK(cv_imwrite(tmp(names[i]), &im, 95, err, sizeof err) == 0, "%s", err);
        char p[512];
        snprintf(p, sizeof p, "imgs/%s", names[i]);
        CHECK(cv_imwrite(tmp(p), &im, 95, err, sizeof err) == 0, "%s", err);
        image_free(&im);
    }
    write_file(tmp("imgs/notes.txt"), "x", 1);
    write_file(tmp("imgs/.hidden.png"), "x", 1);
    // a 16-bit gray PGM (big-endian samples) and a 4-channel PAM (RGBA)
    unsigned char pgm[64];
    int n = snprintf((char *)pgm, sizeof pgm, "P5\n2 1\n65535\n");
    pgm[n++] = 0x80, pgm[n++] = 0x00;   // 32768 -> 128
    pgm[n++] = 0xff, pgm[n++] = 0xff;   // 65535 -> 255
    write_file(tmp("imgs/d16.pgm"), pgm, (size_t)n);
    unsigned char pam[128];
    n = snprintf((char *)pam, sizeof pam, "P7\nWIDTH 1\nHEIGHT 1\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n");
    pam[n++] = 200, pam[n++] = 100, pam[n++] = 50, pam[n++] = 7;
    write_file(tmp("imgs/e4.pam"), pam, (size_t)n);

    SourceConfig c = {.kind = SOURCE_IMAGES, .path = dir};
    Source *s = source_open(&c, err, sizeof err);
    CHECK(s != NULL, "%s", err);
    if (!s) return;
    CHECK(source_frames(s) == 6, "%ld images", source_frames(s));
    int w, h;
    source_size(s, &w, &h);
    CHECK(w == 10 && h == 12, "size %dx%d (the first, a.jpg)", w, h);
    const char *order[] = {"a.jpg", "b10.png", "b2.png", "c.png", "d16.pgm", "e4.pam"};
    Frame f;
    for (int i = 0; i < 6; i++) {
        int r = source_read(s, &f, err, sizeof err);
        CHECK(r == 1, "read %d: %s", i, err);
        if (r != 1) break;
        const char *slash = strrchr(f.name, '/');
        CHECK(slash && !strcmp(slash + 1, order[i]) && f.index == i, "image %d is %s, want %s", i, f.name, order[i]);
        CHECK(f.image->ch == 3 && f.image->w > 0, "BGR");
        if (!strcmp(order[i], "b10.png")) CHECK(f.image->px[0] == 120 && f.image->px[2] == 120, "gray to BGR");
        if (!strcmp(order[i], "d16.pgm"))
            CHECK(f.image->w == 2 && f.image->px[0] == 128 && f.image->px[3] == 255 && f.image->px[5] == 255,
                  "16-bit to 8-bit: %d %d", f.image->px[0], f.image->px[3]);
        if (!strcmp(order[i], "e4.pam"))
            CHECK(f.image->w == 1 && f.image->px[0] == 50 && f.image->px[1] == 100 && f.image->px[2] == 200,
                  "RGBA to BGR: %d %d %d", f.image->px[0], f.image->px[1], f.image->px[2]);
    }
    CHECK(source_read(s, &f, err, sizeof err) == 0, "the end");
    CHECK(source_read(s, &f, err, sizeof err) == 0, "still the end");
    source_close(s);
    // a list of files keeps its order
    const char *list[] = {tmp("c.png"), tmp("a.jpg")};
    SourceConfig cl = {.kind = SOURCE_IMAGES, .paths = list, .npaths = 2};
    s = source_open(&cl, err, sizeof err);
    CHECK(s && source_read(s, &f, err, sizeof err) == 1 && f.image->w == 30, "list order: c.png first");
    CHECK(s && source_read(s, &f, err, sizeof err) == 1 && f.image->w == 10, "then a.jpg");
    CHECK(s && source_read(s, &f, err, sizeof err) == 0, "end of list");
    source_close(s);
}

static void test_camera(void) {
    char err[1024];
    SourceConfig c = {.kind = SOURCE_CAMERA, .path = "/dev/video99", .width = 640, .height = 480, .fps = 30};
    Source *s = source_open(&c, err, sizeof err);
    CHECK(!s, "a camera at /dev/video99");
    source_close(s);
    check_error(err, "/dev/video99", "emocam --realtime FILE");
    CHECK(strstr(err, "emocam video FILE") != NULL, "%s", err);
    printf("  %s\n", err);
    // a character device that is not a camera
    c.path = "/dev/null";
    s = source_open(&c, err, sizeof err);
    CHECK(!s, "/dev/null as a camera");
    source_close(s);
    CHECK(strstr(err, "/dev/null") && !strchr(err, '\n'), "%s", err);
    printf("  %s\n", err);
    c.path = tmp("a.jpg");   // a file
    s = source_open(&c, err, sizeof err);
    CHECK(!s && strstr(err, "not a device file") && strstr(err, "emocam video FILE"), "%s", err);
    source_close(s);
}

static void test_cascades(void) {
    char err[1024];
    DetectorConfig c = detector_defaults();
    c.cascade = tmp("missing.xml");
    Detector *d = detector_open(&c, err, sizeof err);
    CHECK(!d, "missing cascade opened");
    check_error(err, c.cascade, "cannot open");
    printf("  %s\n", err);
    c.cascade = tmp("text.xml");
    write_file(c.cascade, "not xml at all", 14);
    d = detector_open(&c, err, sizeof err);
    CHECK(!d, "text cascade opened");
    check_error(err, c.cascade, "not a cascade");
    printf("  %s\n", err);
    c.cascade = tmp("storage.xml");
    const char *xml = "<?xml version=\"1.0\"?>\n<opencv_storage>\n<x>1</x>\n</opencv_storage>\n";
    write_file(c.cascade, xml, strlen(xml));
    d = detector_open(&c, err, sizeof err);
    CHECK(!d, "a non-cascade XML opened");
    check_error(err, c.cascade, "not a cascade");
    c.cascade = tmp("empty.xml");
    write_file(c.cascade, "", 0);
    d = detector_open(&c, err, sizeof err);
    CHECK(!d, "empty cascade opened");
    check_error(err, c.cascade, "empty");
    c.cascade = NULL;
    c.scale = 2;
    d = detector_open(&c, err, sizeof err);
    CHECK(!d && strstr(err, "bad detector settings"), "scale 2: %s", err);
    // the default cascade (opencv-data) finds nothing in a flat frame
    d = detector_open(NULL, err, sizeof err);
    CHECK(d != NULL, "%s", err);
    if (!d) return;
    Image flat;
    CHECK(image_new(&flat, 640, 360, 3) == 0, "new");
    memset(flat.px, 90, (size_t)flat.h * flat.stride);
    Box b[8];
    CHECK(detector_find(d, &flat, b, 8) == 0, "faces in a flat frame");
    CHECK(detector_scale(d, 640) == 0.25 && detector_scale(d, 100) == 1, "auto scale");
    Image tiny;
    CHECK(image_new(&tiny, 2, 2, 1) == 0 && detector_find(d, &tiny, b, 8) == 0, "a 2x2 frame");
    image_free(&tiny);
    image_free(&flat);
    detector_close(d);
}

static void test_crop(void) {
    Image im;
    CHECK(image_new(&im, 200, 100, 3) == 0, "new");
    for (int y = 0; y < 100; y++)
        for (int x = 0; x < 200; x++) {
            unsigned char *p = image_row(&im, y) + 3 * x;
            p[0] = (unsigned char)(x / 2 + 20), p[1] = (unsigned char)(y + 50), p[2] = (unsigned char)((x + y) / 3);
        }
    uint8_t out[48 * 48];
    Box b = {50, 20, 60, 60};
    CHECK(face_crop48(&im, b, 0, out) == 0, "crop");
    int lo = 255, hi = 0;
    for (int i = 0; i < 48 * 48; i++) lo = out[i] < lo ? out[i] : lo, hi = out[i] > hi ? out[i] : hi;
    CHECK(lo == 0 && hi == 255, "equalised crop spans %d..%d", lo, hi);
    // the crop is the box's pixels: a box over a flat region gives a flat crop (equalised: 255)
    Image flat;
    CHECK(image_new(&flat, 100, 100, 1) == 0, "new");
    memset(flat.px, 77, 100 * 100);
    memset(flat.px, 200, 100 * 10);   // rows 0..9 differ
    Box inner = {20, 30, 40, 40};
    CHECK(face_crop48(&flat, inner, 0, out) == 0, "gray crop");
    int same = 1;
    for (int i = 1; i < 48 * 48; i++) same &= out[i] == out[0];
    CHECK(same, "a flat box gives a flat crop");
    CHECK(face_crop48(&flat, inner, 0.8, out) == 0 && out[0] != out[48 * 47], "margin 0.8 reaches the top rows");
    // clipping: half outside still crops; fully outside fails
    Box edge = {170, -20, 60, 60};
    CHECK(face_crop48(&im, edge, 0, out) == 0, "a box over the edge is clipped");
    Box outside = {300, 0, 50, 50};
    CHECK(face_crop48(&im, outside, 0, out) == -1, "a box outside the frame");
    Box empty = {10, 10, 0, 0};
    CHECK(face_crop48(&im, empty, 0, out) == -1, "an empty box");
    image_free(&im);
    image_free(&flat);
}

int main(void) {
    printf("the errors:\n");
    test_bad_videos();
    test_bad_images();
    test_images();
    test_camera();
    test_cascades();
    test_crop();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmpdir());
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", test_tmpdir());
    return test_result("test_capture");
}
