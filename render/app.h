// app.h: what the emocam commands share: the recognizer options and their parsing, the
// recognizer itself (detect, crop, classify every face of a frame in one batch, track), the
// stage names, and a clock.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ensemble.h"
#include "faces.h"
#include "overlay.h"

// The ensemble used when none is named: the EMOCAM_ENSEMBLE environment variable, else the
// compile-time default (assets/ensemble.txt in the source tree).
#ifndef EMOCAM_DEFAULT_ENSEMBLE
#define EMOCAM_DEFAULT_ENSEMBLE "assets/ensemble.txt"
#endif

typedef struct {
    const char *ensemble;    // list or weights file; NULL: app_default_ensemble()
    const char *cascade;     // NULL: the detector's default (opencv-data)
    double smoothing;        // tracker: probs = smoothing old + (1 - smoothing) new
    double margin;           // crop margin, a fraction of the face side
    double detect_scale;     // 0: the detector's automatic scale
    int min_size;            // smallest face side in pixels
    int tta;                 // ENS_TTA_NONE, _FLIP or _CROPS for every member; -1: the list's
    int bars;                // draw the class bars
    int threads;             // OpenMP threads for the classifier (0: OpenMP's default). One
                             // is fastest for a few faces: decoding, detection and encoding
                             // keep the other cores busy.
    int precision;           // APP_AUTO (bfloat16 on AMX, else int8 where the CPU has
                             // AVX512-VNNI, else bfloat16 with AVX512-BF16), APP_FP32, APP_BF16,
                             // APP_INT8
} AppOptions;

enum { APP_AUTO, APP_FP32, APP_BF16, APP_INT8 };

AppOptions app_defaults(void);
const char *app_default_ensemble(void);

// Try argv[*i] as a recognizer option (--ensemble F, --weights F, --cascade F,
// --smoothing X, --margin X, --detect-scale X, --min-face N, --tta none|flip|crops,
// --threads N, --precision auto|fp32|bf16|int8, --no-bars); on success *i is left on its last
// word. 1: taken; 0: not one of these;
// -1: a bad or missing value, with the message in err.
int app_option(AppOptions *o, int argc, char **argv, int *i, char *err, size_t errlen);
// The help lines for those options.
void app_options_help(FILE *to);

// Strict numbers: the whole word must parse, and lie in [lo, hi]. 0 or -1.
int parse_double(const char *s, double lo, double hi, double *out);
int parse_long(const char *s, long lo, long hi, long *out);

// Monotonic seconds.
double app_now(void);

// The stages a frame goes through, in order, as reported by bench and drawn by the overlay.
enum { ST_DECODE, ST_DETECT, ST_CROP, ST_CLASSIFY, ST_DRAW, ST_OUTPUT, NSTAGES };
extern const char *const STAGE_NAMES[NSTAGES];   // ... "draw", "encode"

enum { APP_MAX_FACES = 64 };

typedef struct {
    Detector *det;
    Ensemble *ens;
    Tracker *trk;
    TrackerConfig tcfg;
    double margin;
    int tta;                 // for ensemble_predict: ENS_TTA_LIST unless --tta
    Box boxes[APP_MAX_FACES];
    uint8_t *faces;          // (APP_MAX_FACES, 48, 48)
    float *probs;            // (APP_MAX_FACES, 7)
} Recognizer;

// Loads the cascade and the ensemble. 0, or -1 with a one-line reason naming the file.
int recognizer_open(Recognizer *r, const AppOptions *o, char *err, size_t errlen);
// Detect the faces of a frame, crop each, classify them all in one batch and match them to
// the tracks. Returns the number of faces (*tracks points to them, valid until the next
// call), or -1 (out of memory). ms, when given, receives the detect, crop and classify times
// at ms[ST_DETECT], ms[ST_CROP] and ms[ST_CLASSIFY].
int recognizer_run(Recognizer *r, const Image *frame, const Track **tracks, double *ms);
// The two halves of recognizer_run, for callers that overlap them on two threads (the live
// loop): detect and crop into the caller's boxes and faces (APP_MAX_FACES x 48 x 48; only
// the detector is used), returning the number of faces or -1; then classify those faces and
// update the tracks (only the ensemble and the tracker are used).
int recognizer_detect(Recognizer *r, const Image *frame, Box *boxes, uint8_t *faces, double *ms);
int recognizer_classify(Recognizer *r, const Box *boxes, const uint8_t *faces, int n,
                        const Track **tracks, double *ms);
// Start the ids over (a new, unrelated image).
int recognizer_reset(Recognizer *r);
void recognizer_close(Recognizer *r);
