// eval.c: emocam-train eval, how well weights or an ensemble classify a set of faces.
//
// Prints accuracy, log loss, per-class precision / recall / F1 / support, macro and weighted
// F1 and the confusion matrix; draws the confusion matrix (confusion.png) and the most
// confident mistakes (mistakes.png); with --out also writes metrics.json (every figure) and
// predictions.csv (every image's probabilities); with --cam a Grad-CAM grid (gradcam.png).
// Every file is written atomically.
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "cv.h"
#include "data.h"
#include "ensemble.h"
#include "gradcam.h"
#include "metrics.h"
#include "report.h"

static const char *const HELP =
    "usage: emocam-train eval (--weights FILE | --ensemble LIST) --data DATA [options]\n"
    "\n"
    "Classify a set of faces and report accuracy, log loss, per-class precision, recall, F1\n"
    "and support, macro and weighted F1, and the confusion matrix. Draws confusion.png (the\n"
    "matrix, row-normalised colours) and mistakes.png (the most confident mistakes).\n"
    "\n"
    "  --weights FILE     one trained network (a .weights file)\n"
    "  --ensemble LIST    an ensemble list (lines of 'WEIGHT PATH', see model/ensemble.h), or\n"
    "                     a single .weights file\n"
    "  --data DATA        FER2013 folders, Kaggle CSV, or class folders (as for train)\n"
    "  --set SET          which images: public (PublicTest, the default), private\n"
    "                     (PrivateTest), all (every image), or val, test or train of --split\n"
    "  --split SPLIT      official | 80/20 | 70/15/15 (as for train; official: val = PublicTest,\n"
    "                     test = PrivateTest); giving it makes --set default to val\n"
    "  --seed N           the random split's seed (default 1, as train's)\n"
    "  --tta 0|1|2        test-time augmentation: 0 none, 1 the face and its mirror,\n"
    "                     2 ten views: 4 px reflect-padded centre and corner crops, each mirrored\n"
    "                     for every member (default: as the list says, member by member:\n"
    "                     its tta=, else the list's tta line, 0 without one)\n"
    "  --out DIR          write the PNGs, metrics.json and predictions.csv into DIR (created);\n"
    "                     without it the PNGs go to the current folder and no JSON is written\n"
    "  --mistakes N       faces in mistakes.png (default 40, 0: no picture)\n"
    "  --cam DIR          also write DIR/gradcam.png: Grad-CAM over a few faces per class\n"
    "  --cam-member K     which ensemble member (1.., default 1)\n"
    "  --cam-layer L      its top-level layer, by index or name (default: the last one whose\n"
    "                     output is spatial)\n"
    "  --cam-per-class N  faces per class (default 4)\n"
    "  --cache FILE       the decoded-data cache (default: ~/.cache/emocam/...)\n"
    "  --no-cache         neither read nor write a cache\n"
    "  --threads N        threads for the math (default: all cores)\n"
    "  --bf16             bfloat16 matrix products, AMX or AVX512-BF16 (as emocam runs them)\n"
    "  --int8             8-bit convolutions (AVX512-VNNI), bfloat16 for the rest (emocam\n"
    "                     --precision int8)\n"
    "  -h, --help         this text\n"
    "\n"
    "Exit status: 0 done, 1 a file could not be read or written, 2 bad usage.\n";

typedef struct {
    const char *weights, *ensemble, *data, *split, *set, *out, *cache, *cam, *cam_layer;
    long seed, tta, threads, mistakes, cam_member, cam_per_class;
    int no_cache;
} EvalArgs;



// 2 on bad usage (the message printed), 0 to go on, -1 for --help (printed).
static int parse_args(int argc, char **argv, EvalArgs *a) {
    *a = (EvalArgs){.seed = 1, .tta = -1, .mistakes = 40, .cam_member = 1, .cam_per_class = 4};
    static const struct {
        const char *name;
        long lo, hi;
        size_t off;
    } NUMS[] = {
        {"--seed", 0, 0x7fffffffL, offsetof(EvalArgs, seed)},
        {"--tta", 0, 2, offsetof(EvalArgs, tta)},
        {"--threads", 1, 256, offsetof(EvalArgs, threads)},
        {"--mistakes", 0, 400, offsetof(EvalArgs, mistakes)},
        {"--cam-member", 1, 1000, offsetof(EvalArgs, cam_member)},
        {"--cam-per-class", 1, 16, offsetof(EvalArgs, cam_per_class)},
    };
    static const struct {
        const char *name;
        size_t off;
    } STRS[] = {
        {"--weights", offsetof(EvalArgs, weights)},
        {"--ensemble", offsetof(EvalArgs, ensemble)},
        {"--data", offsetof(EvalArgs, data)},
        {"--split", offsetof(EvalArgs, split)},
        {"--set", offsetof(EvalArgs, set)},
        {"--out", offsetof(EvalArgs, out)},
        {"--cache", offsetof(EvalArgs, cache)},
        {"--cam", offsetof(EvalArgs, cam)},
        {"--cam-layer", offsetof(EvalArgs, cam_layer)},
    };
    int seen_threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(HELP, stdout);
            return -1;
        }
        if (!strcmp(o, "--no-cache")) {
            a->no_cache = 1;
            continue;
        }
        if (!strcmp(o, "--bf16")) {
            if (emo_set_bf16(1)) {
                fprintf(stderr, "emocam-train eval: --bf16: this CPU (or kernel) has neither AMX-BF16 nor AVX512-BF16\n");
                return 2;
            }
            continue;
        }
        if (!strcmp(o, "--int8")) {
            if (emo_set_int8(1)) {
                fprintf(stderr, "emocam-train eval: --int8: this CPU (or kernel) lacks AVX512-VNNI or AVX512-BF16\n");
                return 2;
            }
            continue;
        }
        int done = 0;
        for (size_t k = 0; k < sizeof STRS / sizeof STRS[0] && !done; k++) {
            if (strcmp(o, STRS[k].name)) continue;
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, "emocam-train eval: %s needs a value (see --help)\n", o);
                return 2;
            }
            const char **dst = (const char **)((char *)a + STRS[k].off);
            if (*dst) {
                fprintf(stderr, "emocam-train eval: %s is given twice\n", o);
                return 2;
            }
            *dst = argv[++i];
            done = 1;
        }
        for (size_t k = 0; k < sizeof NUMS / sizeof NUMS[0] && !done; k++) {
            if (strcmp(o, NUMS[k].name)) continue;
            long *dst = (long *)((char *)a + NUMS[k].off);
            if (i + 1 >= argc || parse_long(argv[i + 1], NUMS[k].lo, NUMS[k].hi, dst)) {
                if (!strcmp(o, "--tta"))
                    fprintf(stderr, "emocam-train eval: --tta: want 0, 1 or 2, not '%s'\n",
                            i + 1 < argc ? argv[i + 1] : "");
                else
                    fprintf(stderr, "emocam-train eval: %s: want a whole number %ld..%ld, not '%s'\n", o,
                            NUMS[k].lo, NUMS[k].hi, i + 1 < argc ? argv[i + 1] : "");
                return 2;
            }
            seen_threads |= !strcmp(o, "--threads");
            i++;
            done = 1;
        }
        if (done) continue;
        if (o[0] == '-') fprintf(stderr, "emocam-train eval: unknown option '%s' (see --help)\n", o);
        else fprintf(stderr, "emocam-train eval: unexpected argument '%s' (see --help)\n", o);
        return 2;
    }
    if (!seen_threads) a->threads = omp_get_num_procs();
    if (!a->weights == !a->ensemble) {
        fprintf(stderr, "emocam-train eval: give one of --weights FILE or --ensemble LIST\n");
        return 2;
    }
    if (!a->data) {
        fprintf(stderr, "emocam-train eval: --data DATA is missing (see --help)\n");
        return 2;
    }
    SplitKind sk;
    if (a->split && split_kind_parse(a->split, &sk)) {
        fprintf(stderr, "emocam-train eval: --split: want official, 80/20 or 70/15/15, not '%s'\n", a->split);
        return 2;
    }
    if (!a->set) a->set = a->split ? "val" : "public";
    static const char *const SETS[] = {"public", "private", "all", "val", "test", "train"};
    int set_ok = 0, split_set = 0;
    for (int k = 0; k < 6; k++)
        if (!strcmp(a->set, SETS[k])) set_ok = 1, split_set = k >= 3;
    if (!set_ok) {
        fprintf(stderr, "emocam-train eval: --set: want public, private, all, val, test or train, not '%s'\n",
                a->set);
        return 2;
    }
    if (a->split && !split_set) {
        fprintf(stderr, "emocam-train eval: --split applies to --set val, test or train, not '%s'\n", a->set);
        return 2;
    }
    if (a->cache && a->no_cache) {
        fprintf(stderr, "emocam-train eval: --cache and --no-cache contradict each other\n");
        return 2;
    }
    if ((a->cam_layer || a->cam_member != 1 || a->cam_per_class != 4) && !a->cam) {
        fprintf(stderr, "emocam-train eval: --cam-member, --cam-layer and --cam-per-class need --cam DIR\n");
        return 2;
    }
    return 0;
}

// ---- the images of the chosen set
static int select_set(const Dataset *d, const EvalArgs *a, int **idx, int *n, char *err, size_t errlen) {
    *idx = NULL;
    *n = 0;
    if (!strcmp(a->set, "public") || !strcmp(a->set, "private")) {
        Usage u = !strcmp(a->set, "public") ? USAGE_PUBLIC_TEST : USAGE_PRIVATE_TEST;
        if (dataset_select(d, u, idx, n)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (!*n)
            snprintf(err, errlen, "%s: no %s images (give --set all, or --set val|test|train with --split)",
                     a->data, USAGE_NAMES[u]);
        return *n ? 0 : -1;
    }
    if (!strcmp(a->set, "all")) {
        *idx = malloc(sizeof(int) * (size_t)(d->n ? d->n : 1));
        if (!*idx) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (int i = 0; i < d->n; i++) (*idx)[i] = i;
        *n = d->n;
        return 0;
    }
    SplitKind sk = SPLIT_OFFICIAL;
    if (a->split) split_kind_parse(a->split, &sk);
    Split s;
    if (dataset_split(d, sk, (uint64_t)a->seed, &s, err, errlen)) return -1;
    int **src = !strcmp(a->set, "val") ? &s.val : !strcmp(a->set, "test") ? &s.test : &s.train;
    *n = !strcmp(a->set, "val") ? s.nval : !strcmp(a->set, "test") ? s.ntest : s.ntrain;
    *idx = *src;
    *src = NULL;
    split_free(&s);
    if (!*n) {
        snprintf(err, errlen, "%s: the %s split has no %s images%s", a->data, split_kind_name(sk), a->set,
                 sk == SPLIT_OFFICIAL && !strcmp(a->set, "test") ? " (its test part is PrivateTest)" : "");
        free(*idx);
        *idx = NULL;
        return -1;
    }
    return 0;
}

// ---- the report
typedef struct {
    const Dataset *d;
    const int *idx;         // (n) dataset indices
    const uint8_t *faces;   // (n, 48, 48)
    const int *labels;      // (n)
    const float *probs;     // (n, 7)
    const int *pred;        // (n)
    int n;
    double logloss;
    Metrics m;
    const char *model;   // what was evaluated (the weights or list path)
    char what[512];      // "3,589 PublicTest images of DATA"
} Results;


static void print_report(const Results *r) {
    const Metrics *m = &r->m;
    char b1[32], b2[32];
    printf("\naccuracy     %.4f  (%s of %s)\n", m->accuracy, commas(m->correct, b1), commas(m->n, b2));
    printf("log loss     %.4f\n", r->logloss);
    printf("macro F1     %.4f   (precision %.4f, recall %.4f)\n", m->macro_f1, m->macro_precision,
           m->macro_recall);
    printf("weighted F1  %.4f\n\n", m->weighted_f1);
    printf("  %-12s %9s %7s %7s %8s\n", "class", "precision", "recall", "F1", "support");
    for (int k = 0; k < NCLASSES; k++)
        printf("  %d %-10s %9.4f %7.4f %7.4f %8ld\n", k, CLASS_NAMES[k], m->precision[k], m->recall[k],
               m->f1[k], m->support[k]);
    printf("  %-12s %9.4f %7.4f %7.4f %8ld\n", "macro avg", m->macro_precision, m->macro_recall, m->macro_f1,
           m->n);
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n  %-10s", "");
    for (int k = 0; k < NCLASSES; k++) printf(" %8.8s", CLASS_NAMES[k]);
    printf(" %8s\n", "recall");
    for (int t = 0; t < NCLASSES; t++) {
        printf("  %-10s", CLASS_NAMES[t]);
        for (int p = 0; p < NCLASSES; p++) printf(" %8ld", m->confusion[t][p]);
        printf(" %7.1f%%\n", 100 * m->recall[t]);
    }
    printf("  %-10s", "precision");
    for (int p = 0; p < NCLASSES; p++) printf(" %7.1f%%", 100 * m->precision[p]);
    printf("\n");
}

// ---- pictures
enum { BG = 0x202020 };

// The confusion matrix: a cell per (true, predicted) coloured by the row-normalised share,
// with the count and the percentage; class names on both axes; a colour bar.
static int draw_confusion(const Results *r, const char *path, char *err, size_t errlen) {
    enum { CELL = 92, LEFT = 130, TOP = 130, RIGHT = 150, BOTTOM = 40 };
    const Metrics *m = &r->m;
    int gw = NCLASSES * CELL, W = LEFT + gw + RIGHT, H = TOP + gw + BOTTOM;
    Image im = {0}, g = {0}, col = {0}, bar = {0}, barc = {0};
    int rc = -1;
    if (image_new(&im, W, H, 3) || image_new(&g, gw, gw, 1) || image_new(&bar, 24, gw, 1)) goto out;
    cv_fill_rect(&im, 0, 0, W, H, CV_WHITE);
    double share[NCLASSES][NCLASSES];
    for (int t = 0; t < NCLASSES; t++)
        for (int p = 0; p < NCLASSES; p++) {
            share[t][p] = m->support[t] ? (double)m->confusion[t][p] / m->support[t] : 0;
            cv_fill_rect(&g, p * CELL, t * CELL, CELL, CELL, (uint32_t)lround(share[t][p] * 255) * 0x010101u);
        }
    for (int y = 0; y < gw; y++) memset(image_row(&bar, y), 255 - y * 255 / (gw - 1), 24);
    if (cv_colormap(&g, &col, CV_CMAP_INFERNO) || cv_paste(&im, &col, LEFT, TOP) ||
        cv_colormap(&bar, &barc, CV_CMAP_INFERNO) || cv_paste(&im, &barc, LEFT + gw + 30, TOP))
        goto out;
    char s[256];
    snprintf(s, sizeof s, "confusion matrix: %s", r->model);
    text_fit(&im, s, 12, 30, W - 24, 0.65, CV_BLACK, 1, 0);
    snprintf(s, sizeof s, "%s; accuracy %.2f%%, macro F1 %.4f", r->what, 100 * m->accuracy, m->macro_f1);
    text_fit(&im, s, 12, 56, W - 24, 0.55, 0x404040, 1, 0);
    text_fit(&im, "predicted", LEFT + gw / 2, TOP - 42, gw, 0.6, CV_BLACK, 1, 1);
    text_fit(&im, "true", LEFT - 60, TOP - 12, LEFT, 0.6, CV_BLACK, 1, 1);
    for (int k = 0; k < NCLASSES; k++) {
        text_fit(&im, CLASS_NAMES[k], LEFT + k * CELL + CELL / 2, TOP - 12, CELL - 6, 0.55, CV_BLACK, 1, 1);
        text_fit(&im, CLASS_NAMES[k], LEFT - 10, TOP + k * CELL + CELL / 2 + 2, LEFT - 16, 0.55, CV_BLACK, 1,
                 2);
        snprintf(s, sizeof s, "n=%ld", m->support[k]);
        text_fit(&im, s, LEFT - 10, TOP + k * CELL + CELL / 2 + 22, LEFT - 16, 0.4, 0x606060, 1, 2);
    }
    for (int t = 0; t < NCLASSES; t++)
        for (int p = 0; p < NCLASSES; p++) {
            uint32_t ink = share[t][p] > 0.6 ? CV_BLACK : CV_WHITE;
            int cx = LEFT + p * CELL + CELL / 2, cy = TOP + t * CELL + CELL / 2;
            snprintf(s, sizeof s, "%ld", m->confusion[t][p]);
            text_fit(&im, s, cx, cy - 2, CELL - 8, 0.7, ink, t == p ? 2 : 1, 1);
            snprintf(s, sizeof s, "%.1f%%", 100 * share[t][p]);
            text_fit(&im, s, cx, cy + 22, CELL - 8, 0.45, ink, 1, 1);
        }
    for (int k = 0; k <= NCLASSES; k++) {   // grid lines
        cv_draw_line(&im, LEFT, TOP + k * CELL, LEFT + gw, TOP + k * CELL, 0x808080, 1);
        cv_draw_line(&im, LEFT + k * CELL, TOP, LEFT + k * CELL, TOP + gw, 0x808080, 1);
    }
    cv_draw_rect(&im, LEFT + gw + 30, TOP, 24, gw, 0x808080, 1);
    for (int q = 0; q <= 4; q++) {   // colour bar ticks
        int y = TOP + (gw - 1) - q * (gw - 1) / 4;
        cv_draw_line(&im, LEFT + gw + 54, y, LEFT + gw + 60, y, CV_BLACK, 1);
        snprintf(s, sizeof s, "%d%%", q * 25);
        cv_draw_text(&im, s, LEFT + gw + 64, y + 5, 0.45, CV_BLACK, 1);
    }
    text_fit(&im, "share of row", LEFT + gw + 30, TOP + gw + 24, RIGHT - 34, 0.45, 0x404040, 1, 0);
    rc = cv_imwrite(path, &im, 0, err, errlen);
out:
    if (rc && !err[0]) snprintf(err, errlen, "%s: out of memory drawing the confusion matrix", path);
    image_free(&im);
    image_free(&g);
    image_free(&col);
    image_free(&bar);
    image_free(&barc);
    return rc;
}

typedef struct {
    int i;
    float p;
} Conf;

static int cmp_conf(const void *a, const void *b) {
    const Conf *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

// The wrong predictions, most confident first (at most k). Returns the count; -1 on OOM.
static int confident_mistakes(const Results *r, int k, Conf **out) {
    Conf *c = malloc(sizeof *c * (size_t)(r->n ? r->n : 1));
    if (!c) return -1;
    int w = 0;
    for (int i = 0; i < r->n; i++)
        if (r->pred[i] != r->labels[i]) c[w++] = (Conf){i, r->probs[(size_t)i * NCLASSES + r->pred[i]]};
    qsort(c, (size_t)w, sizeof *c, cmp_conf);
    *out = c;
    return w < k ? w : k;
}

static int draw_mistakes(const Results *r, const Conf *c, int k, const char *path, char *err, size_t errlen) {
    enum { FACE = 120, GAP = 10, TEXT_H = 44, TITLE = 76, COLS = 8 };
    int cols = k < COLS ? (k ? k : 1) : COLS, rows = k ? (k + cols - 1) / cols : 1;
    int W = GAP + cols * (FACE + GAP), H = TITLE + rows * (FACE + TEXT_H + GAP) + GAP;
    if (W < 640) W = 640;
    Image im;
    if (image_new(&im, W, H, 3)) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    cv_fill_rect(&im, 0, 0, W, H, BG);
    char s[256];
    snprintf(s, sizeof s, "most confident mistakes: %s", r->model);
    text_fit(&im, s, GAP, 28, W - 2 * GAP, 0.6, CV_WHITE, 1, 0);
    snprintf(s, sizeof s, "%d of the %ld wrong predictions on %s", k, r->m.n - r->m.correct, r->what);
    text_fit(&im, s, GAP, 54, W - 2 * GAP, 0.5, 0xc0c0c0, 1, 0);
    if (!k) text_fit(&im, "(no mistakes)", GAP, TITLE + 30, W - 2 * GAP, 0.7, CV_WHITE, 1, 0);
    int rc = 0;
    for (int j = 0; j < k && !rc; j++) {
        int i = c[j].i, x = GAP + (j % cols) * (FACE + GAP), y = TITLE + (j / cols) * (FACE + TEXT_H + GAP);
        rc = draw_face(&im, r->faces + (size_t)i * FACE_PIXELS, x, y, FACE);
        snprintf(s, sizeof s, "true %s", CLASS_NAMES[r->labels[i]]);
        text_fit(&im, s, x, y + FACE + 17, FACE, 0.5, 0x8ee08e, 1, 0);
        snprintf(s, sizeof s, "pred %s %.0f%%", CLASS_NAMES[r->pred[i]], 100 * c[j].p);
        text_fit(&im, s, x, y + FACE + 37, FACE, 0.5, 0xff8a80, 1, 0);
    }
    if (!rc) rc = cv_imwrite(path, &im, 0, err, errlen);
    else snprintf(err, errlen, "%s: cannot draw a face", path);
    image_free(&im);
    return rc;
}

// ---- Grad-CAM
static int resolve_layer(const Net *net, const char *want, int *layer, char *err, size_t errlen) {
    int nl = net_nlayers(net);
    if (!want) {
        *layer = gradcam_default_layer(net);
        if (*layer < 0) {
            snprintf(err, errlen, "%s: no layer with a spatial output for Grad-CAM", net->file);
            return -1;
        }
        return 0;
    }
    long v;
    if (!parse_long(want, 0, nl - 1, &v)) *layer = (int)v;
    else {
        *layer = -1;
        for (int i = 0; i < nl && *layer < 0; i++)
            if (!strcmp(net_layer_info(net, i, NULL), want)) *layer = i;
    }
    Shape s;
    if (*layer >= 0) net_layer_info(net, *layer, &s);
    if (*layer < 0 || *layer == nl - 1 || s.h < 2 || s.w < 2) {
        size_t pos = (size_t)snprintf(
            err, errlen, "--cam-layer '%s': want a layer with a spatial output of %s:", want, net->file);
        for (int i = 0; i < nl && pos < errlen; i++) {
            net_layer_info(net, i, &s);
            if (s.h > 1 && s.w > 1)
                pos += (size_t)snprintf(err + pos, errlen - pos, " %d (%s)", i, net_layer_info(net, i, NULL));
        }
        return -1;
    }
    return 0;
}

// a few faces of each class, spread evenly over the set, in set order
static int pick_cam_faces(const Results *r, int per, int *out) {
    int n = 0;
    for (int c = 0; c < NCLASSES; c++) {
        long cnt = r->m.support[c];
        for (int k = 0; k < per && k < cnt; k++) {
            long want = (long)((k + 0.5) * cnt / per), seen = 0;
            for (int i = 0; i < r->n; i++)
                if (r->labels[i] == c && seen++ == want) {
                    out[n++] = i;
                    break;
                }
        }
    }
    return n;
}

// The Grad-CAM network: the chosen member loaded again, unfolded (folding merges layers), and
// its layer. 0; 1 a file error; 2 bad usage (no such member or layer). err says why.
static int cam_prepare(const Ensemble *e, const EvalArgs *a, Net **net, int *layer, char *err,
                       size_t errlen) {
    *net = NULL;
    if (a->cam_member > e->n) {
        snprintf(err, errlen, "--cam-member %ld: the ensemble has %d member%s", a->cam_member, e->n,
                 e->n == 1 ? "" : "s");
        return 2;
    }
    *net = net_load(e->m[a->cam_member - 1].path, err, errlen);
    if (!*net) return 1;
    if (resolve_layer(*net, a->cam_layer, layer, err, errlen)) {
        net_free(*net);
        *net = NULL;
        return a->cam_layer ? 2 : 1;
    }
    return 0;
}

static int run_gradcam(const Results *r, Net *net, int layer, const EvalArgs *a, const char *path, char *err,
                       size_t errlen) {
    int per = (int)a->cam_per_class, rc = 1;
    int *ids = malloc(sizeof(int) * NCLASSES * (size_t)per), *pred = NULL;
    uint8_t *faces = NULL;
    float *cam = NULL, *probs = NULL;
    Image im = {0};
    Shape s;
    const char *lname = net_layer_info(net, layer, &s);
    long hw = (long)s.h * s.w;
    int n = ids ? pick_cam_faces(r, per, ids) : 0;
    faces = malloc((size_t)(n ? n : 1) * FACE_PIXELS);
    cam = malloc(sizeof(float) * (size_t)(n ? n : 1) * (size_t)hw);
    pred = malloc(sizeof(int) * (size_t)(n ? n : 1));
    probs = malloc(sizeof(float) * (size_t)(n ? n : 1) * NCLASSES);
    if (!ids || !faces || !cam || !pred || !probs) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int j = 0; j < n; j++)
        memcpy(faces + (size_t)j * FACE_PIXELS, r->faces + (size_t)ids[j] * FACE_PIXELS, FACE_PIXELS);
    if (gradcam(net, layer, faces, n, NULL, cam, pred, probs, err, errlen)) goto out;

    enum { FACE = 96, GAP = 8, LABEL_W = 110, TEXT_H = 26, TITLE = 76 };
    int tile = 2 * FACE + 2, W = LABEL_W + per * (tile + GAP) + GAP;
    int H = TITLE + NCLASSES * (FACE + TEXT_H + GAP) + GAP;
    if (W < 700) W = 700;
    if (image_new(&im, W, H, 3)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    cv_fill_rect(&im, 0, 0, W, H, BG);
    char t[512];
    snprintf(t, sizeof t, "Grad-CAM: %s, layer %d %s (%dx%dx%d), for the predicted class", net->file, layer,
             lname, s.c, s.h, s.w);
    text_fit(&im, t, GAP, 28, W - 2 * GAP, 0.55, CV_WHITE, 1, 0);
    snprintf(t, sizeof t, "each face: the face | its Grad-CAM (jet, scaled to the face's maximum); %s",
             r->what);
    text_fit(&im, t, GAP, 54, W - 2 * GAP, 0.45, 0xc0c0c0, 1, 0);
    int at = 0;
    for (int c = 0; c < NCLASSES; c++) {
        int y = TITLE + c * (FACE + TEXT_H + GAP);
        text_fit(&im, CLASS_NAMES[c], GAP, y + FACE / 2 + 6, LABEL_W - 2 * GAP, 0.6, 0xffd060, 1, 0);
        for (int k = 0; at < n && r->labels[ids[at]] == c; k++, at++) {
            int x = LABEL_W + k * (tile + GAP);
            const float *v = cam + (size_t)at * hw;
            float hi = 0;
            for (long q = 0; q < hw; q++)
                if (v[q] > hi) hi = v[q];
            Image heat = {0}, face = {0}, fbig = {0};
            Image f = {FACE_W, FACE_H, 1, FACE_W, faces + (size_t)at * FACE_PIXELS};
            int bad = cv_heatmap(v, s.w, s.h, 0, hi > 0 ? hi : 1, CV_CMAP_JET, FACE, FACE, &heat) ||
                      cv_resize(&f, &fbig, FACE, FACE, CV_RESIZE_LINEAR) || cv_convert(&fbig, &face, 3) ||
                      cv_paste(&im, &face, x, y) || cv_blend(&face, &heat, 0.5) ||
                      cv_paste(&im, &face, x + FACE + 2, y);
            image_free(&heat);
            image_free(&face);
            image_free(&fbig);
            if (bad) {
                snprintf(err, errlen, "%s: cannot draw a heat map", path);
                goto out;
            }
            snprintf(t, sizeof t, "true %s, pred %s %.0f%%", CLASS_NAMES[c], CLASS_NAMES[pred[at]],
                     100 * probs[(size_t)at * NCLASSES + pred[at]]);
            text_fit(&im, t, x, y + FACE + 18, tile, 0.45, pred[at] == c ? 0x8ee08e : 0xff8a80, 1, 0);
        }
    }
    if (cv_imwrite(path, &im, 0, err, errlen)) goto out;
    printf("  wrote %s (Grad-CAM of member %ld, layer %d %s %dx%dx%d, %d faces)\n", path, a->cam_member,
           layer, lname, s.c, s.h, s.w, n);
    rc = 0;
out:
    image_free(&im);
    free(ids);
    free(faces);
    free(cam);
    free(pred);
    free(probs);
    return rc;
}

// ---- files
static void json_num(Buf *b, double v) {
    if (isfinite(v)) buf_printf(b, "%.6g", v);
    else buf_printf(b, "null");
}

static int write_metrics_json(const Results *r, const Ensemble *e, const EvalArgs *a, const Conf *c, int k,
                              const char *path, char *err, size_t errlen) {
    const Metrics *m = &r->m;
    Buf b = {0};
    buf_printf(&b, "{\n  \"model\": ");
    buf_json_str(&b, r->model);
    buf_printf(&b, ",\n  \"members\": [");
    for (int i = 0; i < e->n; i++) {
        buf_printf(&b, "%s{\"path\": ", i ? ", " : "");
        buf_json_str(&b, e->m[i].path);
        buf_printf(&b, ", \"weight\": ");
        json_num(&b, e->m[i].weight / e->wsum);
        buf_printf(&b, ", \"parameters\": %zu, \"tta\": %d}", net_count_params(e->m[i].net),
                   ensemble_member_tta(e, i, (int)a->tta));
    }
    buf_printf(&b, "],\n  \"data\": ");
    buf_json_str(&b, a->data);
    buf_printf(&b, ",\n  \"set\": ");
    buf_json_str(&b, a->set);
    buf_printf(&b, ",\n  \"split\": ");
    if (a->split) buf_json_str(&b, a->split);
    else buf_printf(&b, "null");
    buf_printf(&b, ",\n  \"seed\": %ld,\n  \"tta\": %ld,\n  \"n\": %ld,\n  \"correct\": %ld,\n", a->seed,
               a->tta, m->n, m->correct);
    buf_printf(&b, "  \"accuracy\": ");
    json_num(&b, m->accuracy);
    buf_printf(&b, ",\n  \"log_loss\": ");
    json_num(&b, r->logloss);
    buf_printf(&b, ",\n  \"macro_precision\": ");
    json_num(&b, m->macro_precision);
    buf_printf(&b, ",\n  \"macro_recall\": ");
    json_num(&b, m->macro_recall);
    buf_printf(&b, ",\n  \"macro_f1\": ");
    json_num(&b, m->macro_f1);
    buf_printf(&b, ",\n  \"weighted_f1\": ");
    json_num(&b, m->weighted_f1);
    buf_printf(&b, ",\n  \"classes\": [");
    for (int i = 0; i < NCLASSES; i++) {
        buf_printf(&b, i ? ", " : "");
        buf_json_str(&b, CLASS_NAMES[i]);
    }
    buf_printf(&b, "],\n  \"per_class\": [\n");
    for (int i = 0; i < NCLASSES; i++) {
        buf_printf(&b, "    {\"class\": \"%s\", \"precision\": ", CLASS_NAMES[i]);
        json_num(&b, m->precision[i]);
        buf_printf(&b, ", \"recall\": ");
        json_num(&b, m->recall[i]);
        buf_printf(&b, ", \"f1\": ");
        json_num(&b, m->f1[i]);
        buf_printf(&b, ", \"support\": %ld, \"predicted\": %ld}%s\n", m->support[i], m->predicted[i],
                   i < NCLASSES - 1 ? "," : "");
    }
    buf_printf(&b, "  ],\n  \"confusion\": [\n");   // [true][predicted]
    for (int t = 0; t < NCLASSES; t++) {
        buf_printf(&b, "    [");
        for (int p = 0; p < NCLASSES; p++) buf_printf(&b, "%s%ld", p ? ", " : "", m->confusion[t][p]);
        buf_printf(&b, "]%s\n", t < NCLASSES - 1 ? "," : "");
    }
    buf_printf(&b, "  ],\n  \"confident_mistakes\": [");
    for (int j = 0; j < k; j++) {
        int i = c[j].i;
        buf_printf(&b, "%s\n    {\"name\": ", j ? "," : "");
        buf_json_str(&b, dataset_name(r->d, r->idx[i]));
        buf_printf(&b,
                   ", \"true\": \"%s\", \"predicted\": \"%s\", \"probability\": ", CLASS_NAMES[r->labels[i]],
                   CLASS_NAMES[r->pred[i]]);
        json_num(&b, c[j].p);
        buf_printf(&b, "}");
    }
    buf_printf(&b, "%s]\n}\n", k ? "\n  " : "");
    int rc = buf_write(&b, path, err, errlen);
    buf_free(&b);
    return rc;
}

static int write_predictions(const Results *r, const char *path, char *err, size_t errlen) {
    Buf b = {0};
    buf_printf(&b, "name,label,predicted");
    for (int k = 0; k < NCLASSES; k++) buf_printf(&b, ",p_%s", CLASS_NAMES[k]);
    buf_printf(&b, "\n");
    for (int i = 0; i < r->n; i++) {
        buf_csv_str(&b, dataset_name(r->d, r->idx[i]));
        buf_printf(&b, ",%d,%d", r->labels[i], r->pred[i]);
        for (int k = 0; k < NCLASSES; k++) buf_printf(&b, ",%.5f", r->probs[(size_t)i * NCLASSES + k]);
        buf_printf(&b, "\n");
    }
    int rc = buf_write(&b, path, err, errlen);
    buf_free(&b);
    return rc;
}

// ---- the command
static int write_outputs(Results *r, const Ensemble *e, const EvalArgs *a, Net *cam_net, int cam_layer) {
    char err[EMO_ERRLEN] = "";
    const char *dir = a->out ? a->out : ".";
    if (a->out && mkdir_p(a->out)) {
        fprintf(stderr, "emocam-train eval: %s: cannot create the folder: %s\n", a->out, strerror(errno));
        return 1;
    }
    Conf *c = NULL;
    int k = confident_mistakes(r, (int)a->mistakes, &c), rc = 0;
    char *p_conf = path_join(dir, "confusion.png"), *p_mis = path_join(dir, "mistakes.png");
    char *p_json = path_join(dir, "metrics.json"), *p_pred = path_join(dir, "predictions.csv");
    if (k < 0 || !p_conf || !p_mis || !p_json || !p_pred) {
        snprintf(err, sizeof err, "out of memory");
        rc = 1;
    }
    printf("\nfiles\n");
    if (!rc && (rc = draw_confusion(r, p_conf, err, sizeof err) ? 1 : 0) == 0) printf("  wrote %s\n", p_conf);
    if (!rc && a->mistakes > 0) {
        if ((rc = draw_mistakes(r, c, k, p_mis, err, sizeof err) ? 1 : 0) == 0) printf("  wrote %s\n", p_mis);
    }
    if (!rc && a->out) {
        if ((rc = write_metrics_json(r, e, a, c, k, p_json, err, sizeof err) ? 1 : 0) == 0)
            printf("  wrote %s\n", p_json);
        if (!rc && (rc = write_predictions(r, p_pred, err, sizeof err) ? 1 : 0) == 0)
            printf("  wrote %s\n", p_pred);
    }
    if (rc) fprintf(stderr, "emocam-train eval: %s\n", err);
    if (!rc && a->cam) {
        char *p_cam = path_join(a->cam, "gradcam.png");
        if (!p_cam) {
            fprintf(stderr, "emocam-train eval: out of memory\n");
            rc = 1;
        } else if (mkdir_p(a->cam)) {
            fprintf(stderr, "emocam-train eval: %s: cannot create the folder: %s\n", a->cam, strerror(errno));
            rc = 1;
        } else if ((rc = run_gradcam(r, cam_net, cam_layer, a, p_cam, err, sizeof err)) != 0) {
            fprintf(stderr, "emocam-train eval: %s\n", err);
        }
        free(p_cam);
    }
    free(c);
    free(p_conf);
    free(p_mis);
    free(p_json);
    free(p_pred);
    return rc;
}

int eval_main(int argc, char **argv) {
    EvalArgs a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *model = a.weights ? a.weights : a.ensemble;
    struct stat st;
    if (stat(model, &st) != 0) {
        fprintf(stderr, "emocam-train eval: %s: cannot open: %s\n", model, strerror(errno));
        return 1;
    }
    if (stat(a.data, &st) != 0) {
        fprintf(stderr, "emocam-train eval: %s: cannot open: %s\n", a.data, strerror(errno));
        return 1;
    }
    omp_set_num_threads((int)a.threads);
    openblas_set_num_threads((int)a.threads);

    char err[EMO_ERRLEN] = "", warn[EMO_ERRLEN] = "";
    Ensemble *e = ensemble_load(model, err, sizeof err);
    if (!e) {
        fprintf(stderr, "emocam-train eval: %s\n", err);
        return 1;
    }
    if (a.weights && e->n != 1) {
        fprintf(stderr, "emocam-train eval: --weights %s: is an ensemble list (use --ensemble)\n", a.weights);
        ensemble_free(e);
        return 2;
    }
    if (a.tta < 0) a.tta = ensemble_uniform_tta(e, ENS_TTA_LIST);   // ENS_TTA_LIST when mixed
    printf("model: %s (%d member%s)\n", model, e->n, e->n == 1 ? "" : "s");
    for (int i = 0; i < e->n; i++)
        printf("  %d: weight %.4g  %s  (%zu parameters, input (p - %g) / %g%s%s)\n", i + 1,
               e->m[i].weight / e->wsum, e->m[i].path, net_count_params(e->m[i].net),
               (double)e->m[i].net->in_mean, (double)e->m[i].net->in_std,
               a.tta == ENS_TTA_LIST ? ", tta " : "",
               a.tta == ENS_TTA_LIST ? ensemble_tta_name(e->m[i].tta) : "");

    Net *cam_net = NULL;
    int cam_layer = -1;
    if (a.cam && (rc = cam_prepare(e, &a, &cam_net, &cam_layer, err, sizeof err)) != 0) {
        fprintf(stderr, "emocam-train eval: %s\n", err);
        ensemble_free(e);
        return rc;
    }

    int tty = isatty(2);
    char *cache = NULL;
    if (!a.no_cache) cache = a.cache ? strdup(a.cache) : dataset_default_cache(a.data, NULL);
    DataLoadOpts lo = {DATA_AUTO, cache, load_progress, &tty};
    Dataset d;
    double t0 = now_s();
    if (dataset_load(a.data, &lo, &d, err, sizeof err, warn, sizeof warn)) {
        fprintf(stderr, "emocam-train eval: %s\n", err);
        free(cache);
        ensemble_free(e);
        net_free(cam_net);
        return 1;
    }
    free(cache);
    if (warn[0]) fprintf(stderr, "emocam-train eval: warning: cache %s\n", warn);

    Results r = {.d = &d, .model = model};
    int *idx = NULL, *labels = NULL, *pred = NULL;
    uint8_t *faces = NULL;
    float *probs = NULL;
    rc = 1;
    if (select_set(&d, &a, &idx, &r.n, err, sizeof err)) {
        fprintf(stderr, "emocam-train eval: %s\n", err);
        goto out;
    }
    char b1[32];
    if (!strcmp(a.set, "all")) snprintf(r.what, sizeof r.what, "all %s images", commas(r.n, b1));
    else if (!strcmp(a.set, "public") || !strcmp(a.set, "private"))
        snprintf(r.what, sizeof r.what, "%s %s images", commas(r.n, b1),
                 !strcmp(a.set, "public") ? "PublicTest" : "PrivateTest");
    else
        snprintf(r.what, sizeof r.what, "%s %s images (split %s, seed %ld)", commas(r.n, b1), a.set,
                 a.split ? a.split : "official", a.seed);
    if (a.tta == ENS_TTA_LIST) {
        size_t len = strlen(r.what);
        snprintf(r.what + len, sizeof r.what - len, ", TTA member by member (%d views a face)",
                 ensemble_views(e, ENS_TTA_LIST));
    } else if (a.tta) {
        size_t len = strlen(r.what);
        snprintf(r.what + len, sizeof r.what - len, ", TTA %ld, %s (%d views)", a.tta,
                 ensemble_tta_name((int)a.tta), ensemble_tta_views((int)a.tta));
    }
    printf("data: %s (%s images%s, %.1f s); evaluating %s\n", a.data, commas(d.n, b1),
           d.from_cache ? ", from the cache" : "", now_s() - t0, r.what);

    faces = malloc((size_t)r.n * FACE_PIXELS);
    labels = malloc(sizeof(int) * (size_t)r.n);
    pred = malloc(sizeof(int) * (size_t)r.n);
    probs = malloc(sizeof(float) * (size_t)r.n * NCLASSES);
    if (!faces || !labels || !pred || !probs) {
        fprintf(stderr, "emocam-train eval: out of memory\n");
        goto out;
    }
    for (int i = 0; i < r.n; i++) {
        memcpy(faces + (size_t)i * FACE_PIXELS, dataset_face(&d, idx[i]), FACE_PIXELS);
        labels[i] = d.labels[idx[i]];
    }
    t0 = now_s();
    enum { CHUNK = 256 };
    for (int i = 0; i < r.n; i += CHUNK) {
        int m = r.n - i < CHUNK ? r.n - i : CHUNK;
        if (ensemble_predict(e, faces + (size_t)i * FACE_PIXELS, m, probs + (size_t)i * NCLASSES,
                             (int)a.tta)) {
            fprintf(stderr, "emocam-train eval: out of memory while predicting\n");
            goto out;
        }
        if (tty) fprintf(stderr, "\r\033[Kpredicting %d/%d", i + m, r.n);
    }
    if (tty) fprintf(stderr, "\r\033[K");
    double secs = now_s() - t0;
    int views = ensemble_views(e, (int)a.tta);
    printf("predicted in %.1f s (%.0f faces/s, %d member%s, %d view%s a face)\n", secs,
           r.n / (secs > 0 ? secs : 1e-9), e->n, e->n == 1 ? "" : "s", views, views == 1 ? "" : "s");
    double ll = 0;
    for (int i = 0; i < r.n; i++) {
        const float *p = probs + (size_t)i * NCLASSES;
        int best = 0;
        for (int k = 1; k < NCLASSES; k++)
            if (p[k] > p[best]) best = k;
        pred[i] = best;
        ll -= log(p[labels[i]] > 1e-12f ? p[labels[i]] : 1e-12);
    }
    r.logloss = r.n ? ll / r.n : 0;
    r.idx = idx;
    r.faces = faces;
    r.labels = labels;
    r.pred = pred;
    r.probs = probs;
    metrics_compute(labels, pred, r.n, &r.m);
    print_report(&r);
    rc = write_outputs(&r, e, &a, cam_net, cam_layer);
    fflush(stdout);
out:
    free(idx);
    free(faces);
    free(labels);
    free(pred);
    free(probs);
    dataset_free(&d);
    ensemble_free(e);
    net_free(cam_net);
    return rc;
}
