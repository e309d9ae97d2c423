// bench.c: emocam bench IN [--frames N] [--realtime]: the video pipeline of `emocam video`
// (the same threads, the encoded video going to a temporary file that is removed), timed per
// frame and stage. Prints one JSON object: p50 and p95 milliseconds of each stage, frames per
// second end to end, and (for a real-time source) the frames dropped.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "commands.h"
#include "outfile.h"
#include "pipeline.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: emocam bench IN [--frames N] [--realtime] [options]\n"
            "Runs `emocam video` on IN (the encoded frames go to a temporary file, then away)\n"
            "and prints JSON: p50, p95 and mean milliseconds per frame of each stage (decode,\n"
            "detect, crop, classify, draw, encode) and the frames per second end to end.\n\n"
            "  --frames N      the first N frames only\n"
            "  --realtime      play IN at its own frame rate as a camera would, dropping frames\n"
            "                  when the pipeline falls behind; reports the dropped frames\n");
    app_options_help(to);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Nearest-rank percentile q (0..100) of n sorted values.
static double percentile(const double *v, long n, double q) {
    long k = (long)(q / 100.0 * n + 0.999999) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return v[k];
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

int bench_main(int argc, char **argv) {
    AppOptions ao = app_defaults();
    const char *in = NULL;
    long max_frames = 0;
    int realtime = 0;
    char err[EMO_ERRLEN];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = app_option(&ao, argc, argv, &i, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "emocam bench: %s\n", err);
            return 2;
        }
        if (rc > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--frames")) {
            if (i + 1 >= argc || parse_long(argv[i + 1], 1, 1L << 40, &max_frames)) {
                fprintf(stderr, "emocam bench: --frames '%s': want a number of frames (1 or more)\n",
                        i + 1 < argc ? argv[i + 1] : "");
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--realtime")) realtime = 1;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "emocam bench: unknown option '%s' (emocam bench --help)\n", a);
            return 2;
        } else if (in) {
            fprintf(stderr, "emocam bench: one input video only ('%s' and '%s')\n", in, a);
            return 2;
        } else in = a;
    }
    if (!in) {
        fprintf(stderr, "emocam bench: no input video (usage: emocam bench IN [--frames N])\n");
        return 2;
    }

    volatile sig_atomic_t *stop = app_catch_signals();
    int status = 1;
    Source *src = NULL;
    Recognizer rec = {0};
    Overlay *ov = NULL;
    CvWriter *wr = NULL;
    OutFile fo = {0};
    Pipeline p = {0};
    double *v = NULL;
    char tmpl[64];
    const char *tmpdir = getenv("TMPDIR");
    char *tmp_out = NULL;
    size_t tlen = (tmpdir && *tmpdir ? strlen(tmpdir) : 4) + sizeof tmpl;
    snprintf(tmpl, sizeof tmpl, "emocam-bench-%ld.mp4", (long)getpid());

    SourceConfig sc = {.kind = realtime ? SOURCE_REALTIME : SOURCE_VIDEO, .path = in};
    if (!(src = source_open(&sc, err, sizeof err))) goto fail;
    if (recognizer_open(&rec, &ao, err, sizeof err)) goto fail;
    OverlayConfig oc = overlay_defaults();
    oc.bars = ao.bars;
    if (!(ov = overlay_new(&oc, err, sizeof err))) goto fail;
    if (!(tmp_out = malloc(tlen))) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    snprintf(tmp_out, tlen, "%s/%s", tmpdir && *tmpdir ? tmpdir : "/tmp", tmpl);
    if (outfile_open(&fo, tmp_out, 0, err, sizeof err)) goto fail;
    int w, h;
    source_size(src, &w, &h);
    double fps_in = source_fps(src) > 0 ? source_fps(src) : 25;
    if (!(wr = cv_writer_open(fo.tmp, w, h, fps_in, NULL, err, sizeof err))) goto fail;

    p.src = src;
    p.rec = &rec;
    p.ov = ov;
    p.wr = wr;
    p.max_frames = max_frames;
    p.stop = stop;
    if (pipeline_run(&p)) {
        snprintf(err, sizeof err, "%s: %s", in, p.err);
        goto fail;
    }
    cv_writer_close(wr);
    wr = NULL;
    if (p.frames == 0) {
        snprintf(err, sizeof err, "%s: no frames could be decoded", in);
        goto fail;
    }
    if (!(v = malloc((size_t)p.frames * sizeof *v))) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    printf("{\"input\":");
    json_string(stdout, in);
    printf(",\"size\":[%d,%d],\"frames\":%ld,\"faces\":%ld,\"members\":%d,\"precision\":\"%s\","
           "\"realtime\":%s",
           w, h, p.frames, p.faces, rec.ens->n,
           emo_int8() ? "int8" : emo_bf16() ? "bf16" : "fp32",
           realtime ? "true" : "false");
    printf(",\"fps\":%.2f,\"wall_s\":%.3f", p.frames / (p.wall_s > 0 ? p.wall_s : 1), p.wall_s);
    if (realtime) printf(",\"dropped\":%ld", source_dropped(src));
    printf(",\"stages\":{");
    for (int k = 0; k < NSTAGES; k++) {
        double sum = 0;
        for (long i = 0; i < p.frames; i++) sum += v[i] = p.ms[(size_t)i * NSTAGES + k];
        qsort(v, (size_t)p.frames, sizeof *v, cmp_double);
        printf("%s\"%s\":{\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"mean_ms\":%.3f}", k ? "," : "",
               STAGE_NAMES[k], percentile(v, p.frames, 50), percentile(v, p.frames, 95),
               sum / p.frames);
    }
    printf("}}\n");
    status = fflush(stdout) == 0 ? 0 : 1;
    goto done;
fail:
    fprintf(stderr, "emocam bench: %s\n", err);
    if (*stop) status = 130;
done:
    cv_writer_close(wr);
    outfile_abort(&fo);   // the benchmark's video is never kept
    free(v);
    free(tmp_out);
    pipeline_free(&p);
    overlay_free(ov);
    recognizer_close(&rec);
    source_close(src);
    return status;
}
