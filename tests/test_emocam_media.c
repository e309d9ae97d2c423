// test_emocam_media.c: the emocam program on the real faces of ../shared/media (skips, exit 77,
// without them).
//   - `emocam video` on pyfeat_single_face.mp4 (one man, 72 frames): the mp4 reads back with
//     the input's frame count; the CSV has its header and a row of 15 fields per face, one
//     face id throughout, probabilities summing to 1 and the label their argmax; the JSONL has
//     the same rows as valid JSON objects;
//   - `emocam image` on stills with one and two people: a line per face and the annotated PNGs;
//   - `emocam bench` on the clip: valid JSON with a face per frame.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apputil.h"
#include "source.h"
#include "testutil.h"

#ifndef EMOCAM_BIN
#error "EMOCAM_BIN must name the emocam executable"
#endif

#define MEDIA EMOCAM_SHARED "/media"
static const char *CLASSES[7] = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};


static void check_rows(const char *csv, const char *jsonl) {
    char *c = slurp(csv, NULL), *j = slurp(jsonl, NULL);
    CHECK(c && j, "CSV or JSONL missing");
    if (!c || !j) return;
    const char *header = "frame,time,face,x,y,w,h,angry,disgust,fear,happy,sad,surprise,neutral,label\n";
    CHECK(!strncmp(c, header, strlen(header)), "CSV header: %.100s", c);
    int rows = count_lines(c) - 1, jrows = count_lines(j);
    CHECK(rows >= 60 && rows <= 72, "%d face rows for 72 frames of one face", rows);
    CHECK(jrows == rows, "JSONL has %d lines, CSV %d rows", jrows, rows);
    // CSV rows
    char *save = NULL, *line = strtok_r(c + strlen(header), "\n", &save);
    long last_frame = -1;
    int bad = 0;
    while (line) {
        char label[32] = "";
        long frame;
        double t, p[7];
        int id, x, y, w, h;
        int n = sscanf(line, "%ld,%lf,%d,%d,%d,%d,%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%31s", &frame, &t, &id, &x, &y,
                       &w, &h, &p[0], &p[1], &p[2], &p[3], &p[4], &p[5], &p[6], label);
        int commas = 0;
        for (const char *q = line; *q; q++) commas += *q == ',';
        double sum = 0;
        int arg = 0;
        for (int k = 0; k < 7; k++) {
            sum += p[k];
            if (p[k] > p[arg]) arg = k;
        }
        if (n != 15 || commas != 14 || id != 1 || frame <= last_frame || w <= 0 || h <= 0 ||
            sum < 0.99 || sum > 1.01 || strcmp(label, CLASSES[arg]) || t < 0 || t > 3) {
            if (bad++ < 3) CHECK(0, "bad CSV row: %s", line);
        }
        last_frame = frame;
        line = strtok_r(NULL, "\n", &save);
    }
    CHECK(bad == 0, "%d bad CSV rows", bad);
    // JSONL lines
    save = NULL;
    line = strtok_r(j, "\n", &save);
    bad = 0;
    while (line) {
        const char *keys[] = {"\"frame\":", "\"time\":", "\"face\":1,", "\"x\":", "\"y\":", "\"w\":", "\"h\":",
                              "\"angry\":", "\"disgust\":", "\"fear\":", "\"happy\":", "\"sad\":",
                              "\"surprise\":", "\"neutral\":", "\"label\":\""};
        int ok = json_valid(line);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) ok = ok && strstr(line, keys[k]);
        if (!ok && bad++ < 3) CHECK(0, "bad JSONL line: %s", line);
        line = strtok_r(NULL, "\n", &save);
    }
    CHECK(bad == 0, "%d bad JSONL lines", bad);
    free(c);
    free(j);
}

int main(void) {
    const char *clip = MEDIA "/video/pyfeat_single_face.mp4";
    if (access(clip, R_OK) != 0) {
        printf("test_emocam_media: skipped: %s is missing (the shared media)\n", clip);
        return 77;
    }
    char *W = strdup(tmp_path("net.weights")), *OUT = strdup(tmp_path("stdout.txt"));
    char *ERR = strdup(tmp_path("stderr.txt")), *mp4 = strdup(tmp_path("o.mp4"));
    char *csv = strdup(tmp_path("o.csv")), *jsonl = strdup(tmp_path("o.jsonl"));
    char *imgs = strdup(tmp_path("imgs"));
    if (make_weights(W, 7)) return 1;
#define ARGS(...) ((char *const[]){"emocam", __VA_ARGS__, NULL})

    int rc = run_prog(EMOCAM_BIN, ARGS("video", (char *)clip, "--weights", W, "-o", mp4, "--csv", csv, "--jsonl", jsonl),
                      NULL, OUT, ERR, 600);
    char *e = slurp(ERR, NULL);
    CHECK(rc == 0, "video: exit %d: %s", rc, e ? e : "");
    free(e);
    long in = video_frames(clip), out = video_frames(mp4);
    CHECK(in == 72 && out == in, "the annotated video has %ld frames, the input %ld", out, in);
    check_rows(csv, jsonl);
    CHECK(count_entries(test_tmpdir(), ".tmp") == 0, "a temporary file was left behind");

    rc = run_prog(EMOCAM_BIN,
                  ARGS("image", MEDIA "/stills/fer_justin.jpg", MEDIA "/stills/fr_two_people.jpg", "--weights", W,
                       "-o", imgs),
                  NULL, OUT, ERR, 300);
    char *o = slurp(OUT, NULL);
    CHECK(rc == 0, "image: exit %d", rc);
    int justin = 0, two = 0;
    for (const char *p = o; p && (p = strstr(p, " face ")); p++) {
        const char *start = p;
        while (start > o && start[-1] != '\n') start--;
        justin += !strncmp(start, MEDIA "/stills/fer_justin.jpg face", strlen(MEDIA "/stills/fer_justin.jpg face"));
        two += !strncmp(start, MEDIA "/stills/fr_two_people.jpg face", strlen(MEDIA "/stills/fr_two_people.jpg face"));
    }
    CHECK(justin == 1 && two == 2, "faces: %d in fer_justin (want 1), %d in fr_two_people (want 2): %s", justin,
          two, o ? o : "");
    free(o);
    char p1[1100], p2[1100];
    snprintf(p1, sizeof p1, "%s/fer_justin.png", imgs);
    snprintf(p2, sizeof p2, "%s/fr_two_people.png", imgs);
    Image a = {0}, b = {0};
    char err[512];
    CHECK(cv_imread(p1, 3, &a, err, sizeof err) == 0 && a.w == 381 && a.h == 384, "fer_justin.png: %dx%d", a.w, a.h);
    CHECK(cv_imread(p2, 3, &b, err, sizeof err) == 0 && b.w == 1126 && b.h == 661, "fr_two_people.png: %dx%d", b.w, b.h);
    image_free(&a);
    image_free(&b);
    remove(p1);
    remove(p2);
    rmdir(imgs);

    rc = run_prog(EMOCAM_BIN, ARGS("bench", (char *)clip, "--weights", W, "--frames", "24"), NULL, OUT, ERR, 300);
    o = slurp(OUT, NULL);
    long faces = -1;
    const char *f = o ? strstr(o, "\"faces\":") : NULL;
    if (f) sscanf(f + 8, "%ld", &faces);
    CHECK(rc == 0 && json_valid(o) && strstr(o, "\"frames\":24,") && faces >= 20 && faces <= 24,
          "bench: exit %d: %s", rc, o ? o : "");
    free(o);

    const char *made[] = {W, OUT, ERR, mp4, csv, jsonl};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) remove(made[i]);
    CHECK(count_entries(test_tmpdir(), "") == 0, "files left in %s", test_tmpdir());
    rmdir(test_tmpdir());
    char *owned[] = {W, OUT, ERR, mp4, csv, jsonl, imgs};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) free(owned[i]);
    return test_result("test_emocam_media");
}
