// stats.c: emocam-train stats, what a data set holds (write-up A's data-exploration notebook):
// images per class and split, the class imbalance, exact duplicates, pixel statistics, and
// PNG grids of sample faces.
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "cv.h"
#include "data.h"
#include "report.h"
#include "tfile.h"

static const char *const HELP =
    "usage: emocam-train stats DATA [--csv] [--out DIR] [--cache FILE | --no-cache]\n"
    "                          [--samples N] [--seed N]\n"
    "\n"
    "Print what a face data set holds: images per class and per Kaggle split, the class\n"
    "imbalance, exact duplicate images (within and between splits), and pixel mean and\n"
    "standard deviation. With --out, draw PNGs of sample faces there.\n"
    "\n"
    "DATA is the Kaggle CSV (emotion,pixels,Usage), the FER2013 image folders\n"
    "(DATA/train/<class>/, DATA/test/<class>/), or any folder of class folders\n"
    "(DATA/angry/, DATA/happy/, ...; images of any size are made 48x48 gray).\n"
    "\n"
    "  --csv          DATA is a Kaggle CSV file (default: a file is a CSV, a folder is folders)\n"
    "  --out DIR      write samples_<class>.png (one grid per class), overview.png (a row per\n"
    "                 class) and class_counts.png into DIR (created)\n"
    "  --cache FILE   the decoded cache to read, or to write after loading (default:\n"
    "                 $XDG_CACHE_HOME/emocam or ~/.cache/emocam/emocam-data-<hash>.cache)\n"
    "  --no-cache     neither read nor write a cache\n"
    "  --samples N    faces per class grid (default 64, at most 400)\n"
    "  --seed N       which sample faces are drawn (default 0)\n"
    "  -h, --help     this text\n"
    "\n"
    "Exit status: 0 done, 1 the data or an output could not be read or written, 2 bad usage.\n";


// ---- the progress line, shown once loading has taken more than a second
typedef struct {
    double start, last;
    int shown, tty;
} Progress;

static void on_progress(void *ctx, const char *what, long done, long total) {
    Progress *p = ctx;
    double t = now_s();
    if (t - p->start < 1.0) return;
    if (!p->tty && t - p->last < 5.0 && done != total) return;
    if (p->tty && t - p->last < 0.1 && done != total) return;
    p->last = t;
    p->shown = 1;
    int pct = total > 0 ? (int)(100.0 * done / total) : 0;
    if (!strcmp(what, "reading CSV rows"))   // done/total are bytes there
        fprintf(stderr, "%sloading: reading the CSV, %d%%%s", p->tty ? "\r" : "", pct, p->tty ? "   " : "\n");
    else
        fprintf(stderr, "%sloading: %s %ld/%ld (%d%%)%s", p->tty ? "\r" : "", what, done, total, pct,
                p->tty ? "   " : "\n");
    fflush(stderr);
}

// ---- duplicates
typedef struct {
    uint64_t h;
    int i;
} HashIdx;

static int cmp_hash(const void *a, const void *b) {
    const HashIdx *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int print_duplicates(const Dataset *d) {
    HashIdx *v = malloc((size_t)d->n * sizeof *v);
    int *grp = malloc((size_t)d->n * sizeof *grp);   // the images of one pixel group, in v order
    unsigned char *taken = calloc((size_t)d->n, 1);
    if (!v || !grp || !taken) {
        free(v);
        free(grp);
        free(taken);
        return -1;
    }
    for (int i = 0; i < d->n; i++) v[i] = (HashIdx){fnv1a64(dataset_face(d, i), FACE_PIXELS), i};
    qsort(v, (size_t)d->n, sizeof *v, cmp_hash);
    long dup_all = 0, groups = 0, conflicting = 0, constant_imgs = 0, constant_groups = 0;
    long within[NUSAGES] = {0}, cross[NUSAGES][NUSAGES] = {{0}};
    long biggest = 0;
    int biggest_at = -1;
    // Within each run of equal hashes, gather the groups of identical pixels (a hash collision
    // would split a run into several groups).
    for (int a = 0; a < d->n;) {
        int e = a + 1;
        while (e < d->n && v[e].h == v[a].h) e++;
        for (int r = a; r < e; r++) {
            if (taken[r]) continue;
            int g = 0;
            for (int k = r; k < e; k++)
                if (!taken[k] && (k == r || !memcmp(dataset_face(d, v[r].i), dataset_face(d, v[k].i), FACE_PIXELS)))
                    taken[k] = 1, grp[g++] = v[k].i;
            const uint8_t *f = dataset_face(d, grp[0]);
            int flat = 1;
            for (int k = 1; k < FACE_PIXELS && flat; k++) flat = f[k] == f[0];
            if (flat) constant_imgs += g, constant_groups++;
            if (g < 2) continue;
            long in[NUSAGES] = {0};
            int conflict = 0;
            for (int k = 0; k < g; k++) {
                in[d->usage[grp[k]]]++;
                conflict |= d->labels[grp[k]] != d->labels[grp[0]];
            }
            dup_all += g - 1;
            groups++;
            conflicting += conflict;
            if (g > biggest) biggest = g, biggest_at = grp[0];
            for (int u = 0; u < NUSAGES; u++) {
                if (in[u]) within[u] += in[u] - 1;
                for (int w = 0; w < NUSAGES; w++)   // images of w whose pixels are also in u
                    if (u != w && in[u]) cross[u][w] += in[w];
            }
        }
        a = e;
    }
    free(grp);
    free(taken);
    free(v);
    char c1[32], c2[32], c3[32];
    printf("\nexact duplicates (identical 2,304 pixels, FNV-1a hashed, then compared)\n");
    printf("  all images:  %s repeat an earlier image, in %s groups; %s group%s disagree on the label\n",
           commas(dup_all, c1), commas(groups, c2), commas(conflicting, c3), conflicting == 1 ? "" : "s");
    if (biggest_at >= 0)
        printf("  largest group: %ld copies (e.g. %s)\n", biggest, dataset_name(d, biggest_at));
    for (int u = 0; u < NUSAGES; u++) {
        long n = 0;
        for (int i = 0; i < d->n; i++) n += d->usage[i] == u;
        if (n) printf("  within %-11s %s repeat an earlier %s image\n", USAGE_NAMES[u], commas(within[u], c1), USAGE_NAMES[u]);
    }
    for (int u = 0; u < NUSAGES; u++)
        for (int w = 0; w < NUSAGES; w++)
            if (u != w && cross[u][w] && (u == USAGE_TRAINING || (w != USAGE_TRAINING && u < w)))
                printf("  between:     %s %s images also appear in %s\n", commas(cross[u][w], c1),
                       USAGE_NAMES[w], USAGE_NAMES[u]);
    printf("  constant images (every pixel the same): %s, in %s group%s\n", commas(constant_imgs, c1),
           commas(constant_groups, c2), constant_groups == 1 ? "" : "s");
    return 0;
}

// ---- pixels
static void print_pixels(const Dataset *d) {
    printf("\npixels (0..255; mean +- standard deviation over every pixel; spread of image means)\n");
    for (int u = -1; u < NUSAGES; u++) {
        uint64_t s = 0, s2 = 0;
        double m = 0, m2 = 0;
        long n = 0;
        int lo = 255, hi = 0;
        for (int i = 0; i < d->n; i++) {
            if (u >= 0 && d->usage[i] != u) continue;
            const uint8_t *f = dataset_face(d, i);
            uint64_t a = 0;
            for (int k = 0; k < FACE_PIXELS; k++) {
                a += f[k];
                s2 += (uint64_t)f[k] * f[k];
                if (f[k] < lo) lo = f[k];
                if (f[k] > hi) hi = f[k];
            }
            s += a;
            double im = (double)a / FACE_PIXELS;
            m += im;
            m2 += im * im;
            n++;
        }
        if (!n) continue;
        double N = (double)n * FACE_PIXELS, mean = (double)s / N;
        double var = (double)s2 / N - mean * mean, imean = m / n, ivar = m2 / n - imean * imean;
        printf("  %-12s %6.1f +- %4.1f   range %d..%d   image means %5.1f +- %4.1f\n",
               u < 0 ? "all" : USAGE_NAMES[u], mean, sqrt(var > 0 ? var : 0), lo, hi, imean,
               sqrt(ivar > 0 ? ivar : 0));
    }
}

// ---- counts and imbalance
static void print_counts(const Dataset *d) {
    long c[NUSAGES][NCLASSES] = {{0}}, tot[NUSAGES] = {0}, cls[NCLASSES] = {0};
    for (int i = 0; i < d->n; i++) c[d->usage[i]][d->labels[i]]++, tot[d->usage[i]]++, cls[d->labels[i]]++;
    char b[32];
    printf("\nimages per class and split\n  %-3s %-9s", "", "class");
    for (int u = 1; u <= NUSAGES; u++) {
        int uu = u % NUSAGES;   // unknown last
        if (tot[uu]) printf(" %11s", USAGE_NAMES[uu]);
    }
    printf(" %11s %7s\n", "total", "share");
    for (int k = 0; k < NCLASSES; k++) {
        printf("  %-3d %-9s", k, CLASS_NAMES[k]);
        for (int u = 1; u <= NUSAGES; u++)
            if (tot[u % NUSAGES]) printf(" %11s", commas(c[u % NUSAGES][k], b));
        printf(" %11s %6.2f%%\n", commas(cls[k], b), 100.0 * cls[k] / d->n);
    }
    printf("  %-3s %-9s", "", "total");
    for (int u = 1; u <= NUSAGES; u++)
        if (tot[u % NUSAGES]) printf(" %11s", commas(tot[u % NUSAGES], b));
    printf(" %11s\n", commas(d->n, b));

    printf("\nclass imbalance (largest class : smallest)\n");
    for (int u = -1; u < NUSAGES; u++) {
        const long *v = u < 0 ? cls : c[u];
        if (u >= 0 && !tot[u]) continue;
        int big = 0, small = 0;
        for (int k = 1; k < NCLASSES; k++) {
            if (v[k] > v[big]) big = k;
            if (v[k] < v[small]) small = k;
        }
        if (v[small] > 0)
            printf("  %-12s %6.2f : 1   (%s %ld / %s %ld)\n", u < 0 ? "all" : USAGE_NAMES[u],
                   (double)v[big] / v[small], CLASS_NAMES[big], v[big], CLASS_NAMES[small], v[small]);
        else
            printf("  %-12s   inf      (%s has no images)\n", u < 0 ? "all" : USAGE_NAMES[u], CLASS_NAMES[small]);
    }
}

// ---- pictures
enum { CELL = 96, GAP = 4, LABEL_W = 150, TITLE_H = 40 };

static int put_face(Image *im, const uint8_t *face, int x, int y) {
    Image f = {FACE_W, FACE_H, 1, FACE_W, (unsigned char *)face}, big;
    if (cv_resize(&f, &big, CELL, CELL, CV_RESIZE_NEAREST)) return -1;
    int rc = cv_paste(im, &big, x, y);
    image_free(&big);
    return rc;
}

// Up to k random images of class c (Training when there are any, else all), in file order.
static int pick(const Dataset *d, int c, int k, uint64_t seed, int *out) {
    int any_training = 0, n = 0;
    for (int i = 0; i < d->n && !any_training; i++) any_training = d->usage[i] == USAGE_TRAINING;
    Rng r;
    rng_seed(&r, seed * 7 + (uint64_t)c);
    // reservoir sampling over the class, then sort the picks
    for (int i = 0, seen = 0; i < d->n; i++) {
        if (d->labels[i] != c || (any_training && d->usage[i] != USAGE_TRAINING)) continue;
        seen++;
        if (n < k) out[n++] = i;
        else {
            int j = rng_int(&r, seen);
            if (j < k) out[j] = i;
        }
    }
    for (int a = 1; a < n; a++)   // insertion sort: n <= 400
        for (int b = a; b > 0 && out[b - 1] > out[b]; b--) {
            int t = out[b];
            out[b] = out[b - 1];
            out[b - 1] = t;
        }
    return n;
}

static char *out_path(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/%s", dir, name);
    return p;
}

static int save(const char *dir, const char *name, const Image *im) {
    char err[EMO_ERRLEN];
    char *path = out_path(dir, name);
    if (!path) {
        fprintf(stderr, "emocam-train stats: out of memory\n");
        return -1;
    }
    int rc = cv_imwrite(path, im, 0, err, sizeof err);
    if (rc) fprintf(stderr, "emocam-train stats: %s\n", err);
    else printf("  wrote %s\n", path);
    free(path);
    return rc;
}

static int draw_class_grid(const Dataset *d, int c, int k, uint64_t seed, const char *dir) {
    int *ids = malloc((size_t)k * sizeof *ids);
    if (!ids) return -1;
    int n = pick(d, c, k, seed, ids), cols = n < 8 ? (n ? n : 1) : 8, rows = n ? (n + cols - 1) / cols : 1;
    int w = cols * (CELL + GAP) + GAP, h = TITLE_H + rows * (CELL + GAP) + GAP;
    if (w < 420) w = 420;
    Image im;
    int rc = -1;
    if (image_new(&im, w, h, 1)) goto out;
    cv_fill_rect(&im, 0, 0, w, h, 0x202020);
    long pool = 0;   // what pick() draws from
    int any_training = 0;
    for (int i = 0; i < d->n && !any_training; i++) any_training = d->usage[i] == USAGE_TRAINING;
    for (int i = 0; i < d->n; i++) pool += d->labels[i] == c && (!any_training || d->usage[i] == USAGE_TRAINING);
    char title[128], b[32];
    snprintf(title, sizeof title, "%d %s: %d of %s%s images", c, CLASS_NAMES[c], n, commas(pool, b),
             any_training ? " Training" : "");
    cv_draw_text(&im, title, GAP + 2, 28, 0.7, CV_WHITE, 2);
    for (int i = 0; i < n; i++)
        if (put_face(&im, dataset_face(d, ids[i]), GAP + (i % cols) * (CELL + GAP),
                     TITLE_H + (i / cols) * (CELL + GAP)))
            goto out;
    char name[64];
    snprintf(name, sizeof name, "samples_%s.png", CLASS_NAMES[c]);
    rc = save(dir, name, &im);
out:
    image_free(&im);
    free(ids);
    return rc;
}

static int draw_overview(const Dataset *d, uint64_t seed, const char *dir) {
    enum { COLS = 12 };
    int w = LABEL_W + COLS * (CELL + GAP) + GAP, h = TITLE_H + NCLASSES * (CELL + GAP) + GAP;
    Image im;
    if (image_new(&im, w, h, 3)) return -1;
    cv_fill_rect(&im, 0, 0, w, h, 0x202020);
    char title[256];
    snprintf(title, sizeof title, "%s: %d images, a row of random faces per class", d->source, d->n);
    cv_draw_text(&im, title, GAP + 2, 28, 0.7, CV_WHITE, 2);
    long cnt[NCLASSES];
    dataset_count(d, NULL, 0, cnt);
    int rc = -1;
    for (int c = 0; c < NCLASSES; c++) {
        int ids[COLS], y = TITLE_H + c * (CELL + GAP), n = pick(d, c, COLS, seed, ids);
        char label[64], b[32];
        snprintf(label, sizeof label, "%d %s", c, CLASS_NAMES[c]);
        cv_draw_text(&im, label, GAP + 4, y + CELL / 2 - 4, 0.75, 0xffd060, 2);
        cv_draw_text(&im, commas(cnt[c], b), GAP + 4, y + CELL / 2 + 24, 0.6, 0xc0c0c0, 1);
        for (int i = 0; i < n; i++)
            if (put_face(&im, dataset_face(d, ids[i]), LABEL_W + GAP + i * (CELL + GAP), y)) goto out;
    }
    rc = save(dir, "overview.png", &im);
out:
    image_free(&im);
    return rc;
}

// A bar chart: per class, one bar per split present.
static int draw_counts(const Dataset *d, const char *dir) {
    static const uint32_t COLOURS[NUSAGES] = {0x909090, 0x4c9be8, 0xf2a03d, 0x59b36b};
    long c[NUSAGES][NCLASSES] = {{0}}, tot[NUSAGES] = {0}, top = 1;
    for (int i = 0; i < d->n; i++) c[d->usage[i]][d->labels[i]]++, tot[d->usage[i]]++;
    int present[NUSAGES], np = 0;
    for (int u = 1; u <= NUSAGES; u++)
        if (tot[u % NUSAGES]) present[np++] = u % NUSAGES;
    for (int u = 0; u < NUSAGES; u++)
        for (int k = 0; k < NCLASSES; k++)
            if (c[u][k] > top) top = c[u][k];
    enum { W = 900, H = 480, L = 70, R = 20, T = 50, B = 60 };
    Image im;
    if (image_new(&im, W, H, 3)) return -1;
    cv_fill_rect(&im, 0, 0, W, H, CV_WHITE);
    cv_draw_text(&im, "images per class", L, 32, 0.8, CV_BLACK, 2);
    double ph = H - T - B, pw = W - L - R, gw = pw / NCLASSES;
    long step = top > 5000 ? 1000 : top > 1000 ? 500 : top > 200 ? 100 : top > 50 ? 20 : 5;
    char b[32];
    for (long v = 0; v <= top; v += step) {   // grid lines and their labels
        float y = (float)(T + ph - ph * v / top);
        cv_draw_line(&im, L, y, W - R, y, 0xdddddd, 1);
        int tw;
        cv_text_size(commas(v, b), 0.45, 1, &tw, NULL, NULL);
        cv_draw_text(&im, b, L - 8 - tw, (int)y + 5, 0.45, 0x404040, 1);
    }
    for (int k = 0; k < NCLASSES; k++) {
        double bw = (gw - 16) / np;
        for (int j = 0; j < np; j++) {
            int u = present[j], bh = (int)lround(ph * c[u][k] / top);
            int x = (int)(L + k * gw + 8 + j * bw);
            cv_fill_rect(&im, x, (int)(T + ph) - bh, (int)bw - 2, bh, COLOURS[u]);
        }
        int tw;
        cv_text_size(CLASS_NAMES[k], 0.55, 1, &tw, NULL, NULL);
        cv_draw_text(&im, CLASS_NAMES[k], (int)(L + k * gw + gw / 2 - tw / 2.0), (int)(T + ph + 24), 0.55,
                     CV_BLACK, 1);
    }
    cv_draw_line(&im, L, (float)(T + ph), W - R, (float)(T + ph), CV_BLACK, 1);
    for (int j = 0, x = W - R - 150 * np; j < np; j++, x += 150) {   // legend
        cv_fill_rect(&im, x, 18, 14, 14, COLOURS[present[j]]);
        cv_draw_text(&im, USAGE_NAMES[present[j]], x + 20, 31, 0.5, CV_BLACK, 1);
    }
    int rc = save(dir, "class_counts.png", &im);
    image_free(&im);
    return rc;
}



int stats_main(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *cache = NULL;
    int csv = 0, no_cache = 0;
    long samples = 64, seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP, stdout);
            return 0;
        }
        int takes = !strcmp(a, "--out") || !strcmp(a, "--cache") || !strcmp(a, "--samples") || !strcmp(a, "--seed");
        if (takes && i + 1 >= argc) {
            fprintf(stderr, "emocam-train stats: %s needs a value (see --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--csv")) csv = 1;
        else if (!strcmp(a, "--no-cache")) no_cache = 1;
        else if (!strcmp(a, "--out")) out = argv[++i];
        else if (!strcmp(a, "--cache")) cache = argv[++i];
        else if (!strcmp(a, "--samples")) {
            if (parse_long(argv[++i], 1, 400, &samples)) {
                fprintf(stderr, "emocam-train stats: --samples '%s' is not a whole number 1..400\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--seed")) {
            if (parse_long(argv[++i], 0, 0x7fffffffL, &seed)) {
                fprintf(stderr, "emocam-train stats: --seed '%s' is not a whole number >= 0\n", argv[i]);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "emocam-train stats: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (data) {
            fprintf(stderr, "emocam-train stats: unexpected argument '%s' (DATA is already '%s')\n", a, data);
            return 2;
        } else data = a;
    }
    if (!data) {
        fprintf(stderr, "emocam-train stats: missing DATA (see --help)\n");
        return 2;
    }
    if (cache && no_cache) {
        fprintf(stderr, "emocam-train stats: --cache and --no-cache contradict each other\n");
        return 2;
    }
    if (out && !out[0]) {
        fprintf(stderr, "emocam-train stats: --out '' is not a folder\n");
        return 2;
    }
    struct stat st;
    if (stat(data, &st) != 0) {
        fprintf(stderr, "emocam-train stats: %s: no such file or folder\n", data);
        return 1;
    }
    if (csv && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "emocam-train stats: %s: is a folder, but --csv wants the Kaggle CSV file\n", data);
        return 1;
    }
    char *cache_alloc = NULL;
    if (!cache && !no_cache) {
        cache = cache_alloc = dataset_default_cache(data, NULL);
        if (!cache) fprintf(stderr, "emocam-train stats: no cache folder (set XDG_CACHE_HOME or HOME, or use --cache)\n");
    }

    Progress prog = {now_s(), 0, 0, isatty(2)};
    DataLoadOpts opts = {csv ? DATA_CSV : DATA_AUTO, no_cache ? NULL : cache, on_progress, &prog};
    Dataset d;
    char err[EMO_ERRLEN], warn[EMO_ERRLEN];
    int rc = dataset_load(data, &opts, &d, err, sizeof err, warn, sizeof warn);
    double took = now_s() - prog.start;
    if (prog.shown && prog.tty) fputc('\n', stderr);
    if (rc) {
        fprintf(stderr, "emocam-train stats: %s\n", err);
        free(cache_alloc);
        return 1;
    }
    if (warn[0]) fprintf(stderr, "emocam-train stats: warning: cache %s\n", warn);
    char b[32];
    printf("data: %s (%s images, loaded in %.1f s%s)\n", data, commas(d.n, b), took,
           d.from_cache ? " from the cache" : "");
    if (opts.cache) printf("cache: %s (%s)\n", opts.cache, d.from_cache ? "read" : warn[0] ? "not written" : "written");

    print_counts(&d);
    if (print_duplicates(&d)) {
        fprintf(stderr, "emocam-train stats: out of memory\n");
        rc = 1;
    }
    print_pixels(&d);

    if (!rc && out) {
        if (mkdir_p(out)) {
            fprintf(stderr, "emocam-train stats: %s: cannot create the folder: %s\n", out, strerror(errno));
            rc = 1;
        } else {
            printf("\npictures\n");
            for (int c = 0; c < NCLASSES && !rc; c++)
                if (draw_class_grid(&d, c, (int)samples, (uint64_t)seed, out)) rc = 1;
            if (!rc && draw_overview(&d, (uint64_t)seed, out)) rc = 1;
            if (!rc && draw_counts(&d, out)) rc = 1;
        }
    }
    fflush(stdout);
    dataset_free(&d);
    free(cache_alloc);
    return rc;
}
