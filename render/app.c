// app.c: recognizer options, the per-frame recognizer, numbers and the clock (see app.h).
#include "app.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

const char *const STAGE_NAMES[NSTAGES] = {"decode", "detect", "crop", "classify", "draw", "encode"};

AppOptions app_defaults(void) {
    TrackerConfig t = tracker_defaults();
    return (AppOptions){.ensemble = NULL, .cascade = NULL, .smoothing = t.smoothing, .margin = 0,
                        .detect_scale = 0, .min_size = 30, .tta = -1, .bars = 1, .threads = 1};
}

const char *app_default_ensemble(void) {
    const char *env = getenv("EMOCAM_ENSEMBLE");
    return env && *env ? env : EMOCAM_DEFAULT_ENSEMBLE;
}

double app_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

int parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

// The value after option argv[*i]; NULL (with the message) when it is missing.
static const char *value(int argc, char **argv, int *i, char *err, size_t errlen) {
    if (*i + 1 >= argc) {
        snprintf(err, errlen, "option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int app_option(AppOptions *o, int argc, char **argv, int *i, char *err, size_t errlen) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--no-bars")) {
        o->bars = 0;
        return 1;
    }
    if (!strcmp(a, "--ensemble") || !strcmp(a, "--weights")) {
        if (!(v = value(argc, argv, i, err, errlen))) return -1;
        o->ensemble = v;
        return 1;
    }
    if (!strcmp(a, "--cascade")) {
        if (!(v = value(argc, argv, i, err, errlen))) return -1;
        o->cascade = v;
        return 1;
    }
    if (!strcmp(a, "--smoothing")) {
        if (!(v = value(argc, argv, i, err, errlen))) return -1;
        if (parse_double(v, 0, 0.99, &o->smoothing)) {
            snprintf(err, errlen, "--smoothing '%s': want a number from 0 to 0.99", v);
            return -1;
        }
        return 1;
    }
    if (!strcmp(a, "--margin")) {
        if (!(v = value(argc, argv, i, err, errlen))) return -1;
        if (parse_double(v, 0, 1, &o->margin)) {
            snprintf(err, errlen, "--margin '%s': want a number from 0 to 1 (a fraction of the face side)", v);
            return -1;
        }
        return 1;
    }
    if (!strcmp(a, "--detect-scale")) {
        if (!(v = value(argc, argv, i, err, errlen))) return -1;
        if (parse_double(v, 0, 1, &o->detect_scale)) {
            snprintf(err, errlen, "--detect-scale '%s': want a number from 0 (automatic) to 1", v);
            return -1;
        }
        return 1;
    }
    if (!strcmp(a, "--min-face")) {
        long n;
        if (!(v = value(argc, argv, i, err, errlen))) return -1;
        if (parse_long(v, 1, 100000, &n)) {
            snprintf(err, errlen, "--min-face '%s': want a face side in pixels (1 or more)", v);
            return -1;
        }
        o->min_size = (int)n;
        return 1;
    }
    if (!strcmp(a, "--threads")) {
        long n;
        if (!(v = value(argc, argv, i, err, errlen))) return -1;
        if (parse_long(v, 0, 1024, &n)) {
            snprintf(err, errlen, "--threads '%s': want a number of threads (0: OpenMP's default)", v);
            return -1;
        }
        o->threads = (int)n;
        return 1;
    }
    if (!strcmp(a, "--precision")) {
        if (!(v = value(argc, argv, i, err, errlen))) return -1;
        if (!strcmp(v, "auto")) o->precision = APP_AUTO;
        else if (!strcmp(v, "fp32")) o->precision = APP_FP32;
        else if (!strcmp(v, "bf16")) o->precision = APP_BF16;
        else if (!strcmp(v, "int8")) o->precision = APP_INT8;
        else {
            snprintf(err, errlen, "--precision '%s': want auto, fp32, bf16 or int8", v);
            return -1;
        }
        if (o->precision == APP_BF16 && !emo_bf16_available()) {
            snprintf(err, errlen, "--precision bf16: this CPU (or kernel) has neither AMX-BF16 nor AVX512-BF16");
            return -1;
        }
        if (o->precision == APP_INT8 && !emo_int8_available()) {
            snprintf(err, errlen, "--precision int8: this CPU (or kernel) lacks AVX512-VNNI or AVX512-BF16");
            return -1;
        }
        return 1;
    }
    if (!strcmp(a, "--tta")) {
        if (!(v = value(argc, argv, i, err, errlen))) return -1;
        if ((o->tta = ensemble_tta_parse(v)) < 0) {
            snprintf(err, errlen, "--tta '%s': want none, flip or crops", v);
            return -1;
        }
        return 1;
    }
    return 0;
}

void app_options_help(FILE *to) {
    fprintf(to,
            "recognizer options:\n"
            "  --ensemble FILE     ensemble list or weights file (default %s)\n"
            "  --weights FILE      the same: one weights file is a one-member ensemble\n"
            "  --cascade FILE      Haar cascade XML (default %s)\n"
            "  --smoothing X       smoothing of each face's probabilities over time, 0..0.99 (0.6)\n"
            "  --margin X          widen each face box by X of its side before cropping (0)\n"
            "  --detect-scale X    detect on the frame scaled by X (0: automatic, about 320 px wide)\n"
            "  --min-face N        smallest face side in pixels (30)\n"
            "  --tta none|flip|crops  test-time augmentation of each face, for every member\n"
            "                      (default: as the list says, member by member)\n"
            "  --threads N         classifier threads (1; 0: OpenMP's default)\n"
            "  --precision P       the classifier's matrix products: fp32; bf16 (bfloat16 on the AMX\n"
            "                      unit of Xeon Sapphire Rapids and later, or with AVX512-BF16 on\n"
            "                      AMD Zen 4 and later); int8 (8-bit convolutions with AVX512-VNNI,\n"
            "                      bf16 for the rest); or auto (the default: bf16 on AMX, else int8,\n"
            "                      else bf16, where the CPU can; PublicTest accuracy within 0.1\n"
            "                      point of fp32, 1.3-1.9x faster)\n"
            "  --no-bars           leave out the 7 class bars\n",
            app_default_ensemble(), DETECTOR_CASCADE);
}

int recognizer_open(Recognizer *r, const AppOptions *o, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    const char *ens = o->ensemble ? o->ensemble : app_default_ensemble();
    DetectorConfig dc = detector_defaults();
    dc.cascade = o->cascade;
    dc.scale = o->detect_scale;
    dc.min_size = o->min_size;
    r->det = detector_open(&dc, err, errlen);
    if (!r->det) return -1;
    // before loading: frozen networks pack their weights for the precision in use
    emo_set_int8(0);
    emo_set_bf16(o->precision == APP_BF16 || (o->precision == APP_AUTO && emo_bf16_available()));
    // auto: int8 with VNNI, but not in place of AMX's bfloat16 tiles (several times VNNI's rate)
    if (o->precision == APP_INT8 || (o->precision == APP_AUTO && emo_int8_available() &&
                                     emo_bf16_available() != EMO_BF16_AMX))
        emo_set_int8(1);
    r->ens = ensemble_load(ens, err, errlen);
    if (!r->ens) {
        if (!o->ensemble && strstr(err, "cannot open")) {   // the default: say how to give one
            size_t len = strlen(err);
            snprintf(err + len, errlen - len, " (name one with --ensemble LIST or --weights FILE)");
        }
        recognizer_close(r);
        return -1;
    }
    if (o->threads > 0) omp_set_num_threads(o->threads);   // the calling thread classifies
    r->tcfg = tracker_defaults();
    r->tcfg.smoothing = o->smoothing;
    r->margin = o->margin;
    r->tta = o->tta >= 0 ? o->tta : ENS_TTA_LIST;
    r->trk = tracker_new(&r->tcfg);
    r->faces = malloc((size_t)APP_MAX_FACES * ENS_FACE * ENS_FACE);
    r->probs = malloc((size_t)APP_MAX_FACES * ENS_CLASSES * sizeof *r->probs);
    if (!r->trk || !r->faces || !r->probs) {
        snprintf(err, errlen, "%s: out of memory", ens);
        recognizer_close(r);
        return -1;
    }
    return 0;
}

int recognizer_reset(Recognizer *r) {
    tracker_free(r->trk);
    r->trk = tracker_new(&r->tcfg);
    return r->trk ? 0 : -1;
}

int recognizer_detect(Recognizer *r, const Image *frame, Box *boxes, uint8_t *faces, double *ms) {
    double t0 = app_now();
    int n = detector_find(r->det, frame, boxes, APP_MAX_FACES);
    if (n < 0) return -1;
    double t1 = app_now();
    // a box that misses the frame (cannot happen for clipped boxes) is dropped
    int k = 0;
    for (int i = 0; i < n; i++)
        if (face_crop48(frame, boxes[i], r->margin, faces + (size_t)k * ENS_FACE * ENS_FACE) == 0)
            boxes[k++] = boxes[i];
    if (ms) {
        ms[ST_DETECT] = 1e3 * (t1 - t0);
        ms[ST_CROP] = 1e3 * (app_now() - t1);
    }
    return k;
}

int recognizer_classify(Recognizer *r, const Box *boxes, const uint8_t *faces, int n,
                        const Track **tracks, double *ms) {
    double t0 = app_now();
    if (n > 0 && ensemble_predict(r->ens, faces, n, r->probs, r->tta) != 0) return -1;
    if (ms) ms[ST_CLASSIFY] = 1e3 * (app_now() - t0);
    return tracker_update(r->trk, boxes, r->probs, n, tracks);
}

int recognizer_run(Recognizer *r, const Image *frame, const Track **tracks, double *ms) {
    int n = recognizer_detect(r, frame, r->boxes, r->faces, ms);
    return n < 0 ? -1 : recognizer_classify(r, r->boxes, r->faces, n, tracks, ms);
}

void recognizer_close(Recognizer *r) {
    detector_close(r->det);
    ensemble_free(r->ens);
    tracker_free(r->trk);
    free(r->faces);
    free(r->probs);
    memset(r, 0, sizeof *r);
}
