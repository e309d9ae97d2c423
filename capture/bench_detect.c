// bench_detect.c: emocam-detect-bench, the figures behind the detector's default scale.
//
//   emocam-detect-bench [VIDEO [FRAMES [SCALE...]]]
//
// Decodes FRAMES frames (default 60) of VIDEO (default ../shared/media/video/
// pyfeat_single_face.mp4, 640x360), then for each scale prints one JSON line: milliseconds
// per frame for detector_find as a whole (gray, resize, equalise, detect, map back) and for
// detectMultiScale alone on the prepared image (best of 3 passes over the frames), the CPU
// time of detector_find summed over OpenCV's threads, and the faces found per frame and their
// mean width. SCALE... replaces the default list of scales.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "faces.h"
#include "source.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }   // all threads

int main(int argc, char **argv) {
    const char *video = argc > 1 ? argv[1] : EMOCAM_SOURCE_DIR "/../shared/media/video/pyfeat_single_face.mp4";
    int want = argc > 2 ? atoi(argv[2]) : 60;
    char err[1024];
    SourceConfig sc = {.kind = SOURCE_VIDEO, .path = video};
    Source *src = source_open(&sc, err, sizeof err);
    if (!src) {
        fprintf(stderr, "emocam-detect-bench: %s\n", err);
        return 1;
    }
    if (want < 1) want = 1;
    Image *frames = calloc((size_t)want, sizeof *frames);
    int n = 0;
    Frame f;
    while (frames && n < want && source_read(src, &f, err, sizeof err) == 1)
        if (cv_convert(f.image, &frames[n], 3) == 0) n++;
    source_close(src);
    if (n == 0) {
        fprintf(stderr, "emocam-detect-bench: %s: no frames\n", video);
        return 1;
    }
    static const double SCALES[] = {1.0, 0.75, 0.6, 0.5, 0.4, 0.33, 0.25};
    int nscales = argc > 3 ? argc - 3 : (int)(sizeof SCALES / sizeof *SCALES);
    for (int k = 0; k < nscales; k++) {
        DetectorConfig dc = detector_defaults();
        dc.scale = argc > 3 ? atof(argv[3 + k]) : SCALES[k];
        Detector *d = detector_open(&dc, err, sizeof err);
        if (!d) {
            fprintf(stderr, "emocam-detect-bench: %s\n", err);
            return 1;
        }
        CvCascade *cc = cv_cascade_open(DETECTOR_CASCADE, err, sizeof err);
        if (!cc) {
            fprintf(stderr, "emocam-detect-bench: %s\n", err);
            return 1;
        }
        double best_all = 1e9, best_det = 1e9, best_cpu = 1e9;
        long faces = 0, side = 0;
        Box boxes[64];
        for (int rep = 0; rep < 3; rep++) {
            double t_all = 0, t_det = 0, t_cpu = 0;
            faces = side = 0;
            for (int i = 0; i < n; i++) {
                double t = now_s(), c = cpu_s();
                int m = detector_find(d, &frames[i], boxes, 64);
                t_all += now_s() - t;
                t_cpu += cpu_s() - c;
                faces += m > 0 ? m : 0;
                for (int j = 0; j < m; j++) side += boxes[j].w;
                // detectMultiScale alone, on the same prepared image
                Image g = {0}, s = {0};
                int sw = (int)(frames[i].w * dc.scale + 0.5), sh = (int)(frames[i].h * dc.scale + 0.5);
                if (cv_convert(&frames[i], &g, 1) || cv_resize(&g, &s, sw, sh, CV_RESIZE_AREA) || cv_equalize(&s))
                    return 1;
                t = now_s();
                cv_cascade_detect(cc, &s, dc.scale_factor, dc.min_neighbors, (int)(dc.min_size * dc.scale + 0.5), boxes, 64);
                t_det += now_s() - t;
                image_free(&g);
                image_free(&s);
            }
            if (t_all < best_all) best_all = t_all;
            if (t_det < best_det) best_det = t_det;
            if (t_cpu < best_cpu) best_cpu = t_cpu;
        }
        printf("{\"video\": \"%s\", \"frame\": \"%dx%d\", \"scale\": %.2f, \"searched\": \"%dx%d\", "
               "\"find_ms\": %.2f, \"find_cpu_ms\": %.2f, \"detect_ms\": %.2f, \"faces_per_frame\": %.2f, "
               "\"mean_face_px\": %.0f}\n",
               video, frames[0].w, frames[0].h, dc.scale, (int)(frames[0].w * dc.scale + 0.5),
               (int)(frames[0].h * dc.scale + 0.5), 1e3 * best_all / n, 1e3 * best_cpu / n,
               1e3 * best_det / n, (double)faces / n, faces ? (double)side / faces : 0.0);
        fflush(stdout);
        cv_cascade_close(cc);
        detector_close(d);
    }
    for (int i = 0; i < n; i++) image_free(&frames[i]);
    free(frames);
    return 0;
}
