// test_emocam_live.c: the live window under Xvfb, fed by pyfeat_single_face.mp4 played in real
// time (--realtime --loop). After a few frames the program takes a snapshot of its window (the
// s key, pushed by --snapshot-after) and quits (q, by --quit-after). The snapshot must be the
// window at the clip's size with the overlay on it: the box, in a class colour, where the
// cascade finds the face, and the bars beside it. Skips (exit 77) without ../shared or
// xvfb-run.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apputil.h"
#include "faces.h"
#include "overlay.h"
#include "source.h"
#include "testutil.h"

#ifndef EMOCAM_BIN
#error "EMOCAM_BIN must name the emocam executable"
#endif

#define XVFB_RUN "/usr/bin/xvfb-run"

// A pixel within tol of one of the class colours.
static int class_coloured(const unsigned char *p, int tol) {
    for (int k = 0; k < OVERLAY_CLASSES; k++) {
        uint32_t c = overlay_class_colour(k);
        if (abs(p[2] - (int)((c >> 16) & 255)) <= tol && abs(p[1] - (int)((c >> 8) & 255)) <= tol &&
            abs(p[0] - (int)(c & 255)) <= tol)
            return 1;
    }
    return 0;
}

// Rows (or columns) of a band along one box edge that hold a class-coloured pixel.
static int edge_hits(const Image *im, int x0, int y0, int x1, int y1, int vertical) {
    int hits = 0;
    int a0 = vertical ? y0 : x0, a1 = vertical ? y1 : x1;
    for (int a = a0; a < a1; a++) {
        int found = 0;
        for (int b = vertical ? x0 : y0; b < (vertical ? x1 : y1) && !found; b++) {
            int x = vertical ? b : a, y = vertical ? a : b;
            if (x >= 0 && y >= 0 && x < im->w && y < im->h) found = class_coloured(image_row(im, y) + 3 * x, 12);
        }
        hits += found;
    }
    return hits;
}

int main(void) {
    const char *clip = EMOCAM_SHARED "/media/video/pyfeat_single_face.mp4";
    if (access(clip, R_OK) != 0) {
        printf("test_emocam_live: skipped: %s is missing (the shared media)\n", clip);
        return 77;
    }
    if (access(XVFB_RUN, X_OK) != 0) {
        printf("test_emocam_live: skipped: %s is missing (Debian's xvfb)\n", XVFB_RUN);
        return 77;
    }
    char *W = strdup(tmp_path("net.weights")), *OUT = strdup(tmp_path("stdout.txt"));
    char *ERR = strdup(tmp_path("stderr.txt")), *dir = strdup(test_tmpdir());
    if (make_weights(W, 11)) return 1;

    // where the face is: the cascade on the clip's first frame, as emocam runs it
    char err[512];
    SourceConfig sc = {.kind = SOURCE_VIDEO, .path = clip};
    Source *src = source_open(&sc, err, sizeof err);
    DetectorConfig dc = detector_defaults();
    Detector *det = detector_open(&dc, err, sizeof err);
    Frame f;
    Box face = {0};
    int nf = src && det && source_read(src, &f, err, sizeof err) == 1 ? detector_find(det, f.image, &face, 1) : -1;
    CHECK(nf == 1, "no face found on the clip's first frame: %s", err);
    detector_close(det);
    source_close(src);

    char *args[] = {XVFB_RUN, "-a", "-s", "-screen 0 1280x720x24", EMOCAM_BIN, "--realtime", (char *)clip,
                    "--loop", "--weights", W, "--snapshot-after", "8", "--quit-after", "12",
                    "--snapshot-dir", dir, NULL};
    int rc = run_prog(XVFB_RUN, args, NULL, OUT, ERR, 300);
    char *o = slurp(OUT, NULL), *e = slurp(ERR, NULL);
    CHECK(rc == 0, "live: exit %d: %s", rc, e ? e : "");
    const char *snap = o ? strstr(o, "snapshot: ") : NULL;
    char path[1100] = "";
    if (snap) sscanf(snap + 10, "%1099s", path);
    CHECK(path[0], "no snapshot printed: stdout [%s] stderr [%s]", o ? o : "", e ? e : "");
    Image im = {0};
    if (path[0] && cv_imread(path, 3, &im, err, sizeof err) == 0) {
        CHECK(im.w == 640 && im.h == 360, "snapshot is %dx%d, want the window at 640x360", im.w, im.h);
        // the box: a class-coloured line along each edge of the face (the man moves a little)
        int m = 14, b = face.h / 4, a = face.w / 4;
        int left = edge_hits(&im, face.x - m, face.y + b, face.x + m, face.y + face.h - b, 1);
        int right = edge_hits(&im, face.x + face.w - m, face.y + b, face.x + face.w + m, face.y + face.h - b, 1);
        int bottom = edge_hits(&im, face.x + a, face.y + face.h - m, face.x + face.w - a, face.y + face.h + m, 0);
        CHECK(left > face.h / 2 * 8 / 10, "left edge of the box: %d of %d rows", left, face.h / 2);
        CHECK(right > face.h / 2 * 8 / 10, "right edge of the box: %d of %d rows", right, face.h / 2);
        CHECK(bottom > face.w / 2 * 8 / 10, "bottom edge of the box: %d of %d columns", bottom, face.w / 2);
        // the bars right of the box: their dark tracks and some coloured fill
        int tracks = 0, fill = 0;
        for (int y = face.y - m; y < face.y + face.h && y < im.h; y++)
            for (int x = face.x + face.w + m; x < im.w; x++) {
                if (y < 0) continue;
                const unsigned char *p = image_row(&im, y) + 3 * x;
                tracks += abs(p[0] - 0x40) <= 3 && abs(p[1] - 0x40) <= 3 && abs(p[2] - 0x40) <= 3;
                fill += class_coloured(p, 12);
            }
        CHECK(tracks > 7 * 20, "bar tracks: %d pixels", tracks);
        CHECK(fill > 20, "bar fill: %d pixels", fill);
        image_free(&im);
        remove(path);
    } else {
        CHECK(!path[0], "cannot read the snapshot: %s", err);
    }
    free(o);
    free(e);
    const char *made[] = {W, OUT, ERR};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) remove(made[i]);
    CHECK(count_entries(dir, "") == 0, "files left in %s", dir);
    rmdir(dir);
    char *owned[] = {W, OUT, ERR, dir};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) free(owned[i]);
    return test_result("test_emocam_live");
}
