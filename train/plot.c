// plot.c: emocam-train plot, learning curves from run folders' log.csv.
//
// Three panels side by side: loss, accuracy and learning rate per epoch. The columns are taken
// by name from the CSV header (train_cmd.c writes epoch, train_loss, train_acc, val_loss,
// val_acc, lr, seconds, img_per_s): every column ending in _loss goes to the loss panel, every
// one ending in _acc to the accuracy panel, lr to the third. train_* columns are dashed, val_*
// solid, any other dotted. One run: a colour per column; several runs: a colour per run.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "commands.h"
#include "cv.h"
#include "model.h"
#include "report.h"

static const char *const HELP =
    "usage: emocam-train plot RUN [RUN ...] [--out FILE.png]\n"
    "\n"
    "Draw learning curves from RUN/log.csv (RUN may also be the CSV file itself): loss and\n"
    "accuracy per epoch, train (dashed) and validation (solid), and the learning rate (log\n"
    "scale when it spans more than a factor of 20). Several runs share one figure, a colour\n"
    "per run, for comparing experiments. Prints each run's best validation accuracy.\n"
    "\n"
    "  --out FILE.png   where to write (default RUN/curves.png; needed for several runs)\n"
    "  -h, --help       this text\n"
    "\n"
    "Exit status: 0 done, 1 a log could not be read or the picture written, 2 bad usage.\n";

enum { MAX_COLS = 32, MAX_RUNS = 12 };

typedef struct {
    char *name;   // the run's label (its folder name)
    char *path;   // the CSV
    int ncols, rows;
    char *col[MAX_COLS];   // header names
    double *v;             // (rows, ncols)
} Log;

static void log_free(Log *l) {
    free(l->name);
    free(l->path);
    for (int i = 0; i < l->ncols; i++) free(l->col[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int log_col(const Log *l, const char *name) {
    for (int i = 0; i < l->ncols; i++)
        if (!strcmp(l->col[i], name)) return i;
    return -1;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

// Read RUN/log.csv (or RUN itself when it is a file). 0, or -1 with the reason in err.
static int log_read(const char *run, Log *l, char *err, size_t errlen) {
    memset(l, 0, sizeof *l);
    struct stat st;
    int is_file = stat(run, &st) == 0 && S_ISREG(st.st_mode);
    l->path = is_file ? dupstr(run) : path_join(run, "log.csv");
    // the label: the run folder's name (without trailing slashes)
    char *nm = dupstr(run);
    if (!l->path || !nm) {
        free(nm);
        snprintf(err, errlen, "%s: out of memory", run);
        return -1;
    }
    size_t len = strlen(nm);
    while (len > 1 && nm[len - 1] == '/') nm[--len] = 0;
    if (is_file && ends_with(nm, "/log.csv")) nm[len - 8] = 0;
    const char *base = strrchr(nm, '/');
    l->name = dupstr(base && base[1] ? base + 1 : nm);
    free(nm);
    FILE *f = fopen(l->path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", l->path, strerror(errno));
        return -1;
    }
    char line[4096];
    int ln = 0, cap = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        ln++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            snprintf(err, errlen, "%s:%d: line too long", l->path, ln);
            rc = -1;
            break;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = 0;
        if (!n) continue;
        if (!l->ncols) {   // the header
            for (char *s = line, *next; s && !rc; s = next) {
                next = strchr(s, ',');
                if (next) *next++ = 0;
                if (l->ncols == MAX_COLS) {
                    snprintf(err, errlen, "%s:%d: more than %d columns", l->path, ln, MAX_COLS);
                    rc = -1;
                } else if (!(l->col[l->ncols++] = dupstr(s))) {
                    snprintf(err, errlen, "out of memory");
                    rc = -1;
                }
            }
            if (!rc && log_col(l, "epoch") < 0) {
                snprintf(err, errlen, "%s:%d: the header has no 'epoch' column", l->path, ln);
                rc = -1;
            }
            continue;
        }
        if (l->rows == cap) {
            cap = cap ? 2 * cap : 64;
            double *v = realloc(l->v, sizeof(double) * (size_t)cap * (size_t)l->ncols);
            if (!v) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            l->v = v;
        }
        double *row = l->v + (size_t)l->rows * l->ncols;
        int k = 0;
        for (char *s = line, *next; s; s = next, k++) {
            next = strchr(s, ',');
            if (next) *next++ = 0;
            char *end;
            double x = strtod(s, &end);
            if (k >= l->ncols || end == s || *end) {
                snprintf(err, errlen, "%s:%d: %s", l->path, ln,
                         k >= l->ncols ? "more fields than the header" : "a field is not a number");
                rc = -1;
                break;
            }
            row[k] = x;
        }
        if (!rc && k != l->ncols) {
            snprintf(err, errlen, "%s:%d: %d fields, the header has %d", l->path, ln, k, l->ncols);
            rc = -1;
        }
        if (!rc) l->rows++;
    }
    if (!rc && ferror(f)) {
        snprintf(err, errlen, "%s: read error", l->path);
        rc = -1;
    }
    fclose(f);
    if (!rc && !l->rows) {
        snprintf(err, errlen, "%s: no epochs logged yet", l->path);
        rc = -1;
    }
    return rc;
}

// ---- axes
typedef struct {
    int x, y, w, h;          // the plot area in the image
    double x0, x1, y0, y1;   // data range shown
    int ylog;                // y axis in log10
} Axes;

static double nice_step(double range, int ticks) {
    double raw = range / ticks, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7.5 ? 5 : 10) * p;
}

static float ax_x(const Axes *a, double v) { return (float)(a->x + (v - a->x0) / (a->x1 - a->x0) * a->w); }
static float ax_y(const Axes *a, double v) {
    if (a->ylog) v = log10(v > 1e-30 ? v : 1e-30);
    return (float)(a->y + a->h - (v - a->y0) / (a->y1 - a->y0) * a->h);
}

// Frame, grid, ticks and labels. yfmt: 0 plain, 1 percent, 2 powers of ten (log axis).
static void draw_axes(Image *im, Axes *a, const char *title, const char *xlabel, int yfmt, double xstep,
                      double ystep) {
    char s[64];
    cv_fill_rect(im, a->x, a->y, a->w, a->h, CV_WHITE);
    for (double v = ceil(a->x0 / xstep - 1e-9) * xstep; v <= a->x1 + 1e-9; v += xstep) {
        float x = ax_x(a, v);
        cv_draw_line(im, x, (float)a->y, x, (float)(a->y + a->h), 0xe4e4e4, 1);
        cv_draw_line(im, x, (float)(a->y + a->h), x, (float)(a->y + a->h + 5), CV_BLACK, 1);
        snprintf(s, sizeof s, "%g", v);
        text_fit(im, s, (int)x, a->y + a->h + 22, 60, 0.45, CV_BLACK, 1, 1);
    }
    for (double v = ceil(a->y0 / ystep - 1e-9) * ystep; v <= a->y1 + 1e-9 * ystep; v += ystep) {
        float y = (float)(a->y + a->h - (v - a->y0) / (a->y1 - a->y0) * a->h);
        cv_draw_line(im, (float)a->x, y, (float)(a->x + a->w), y, 0xe4e4e4, 1);
        cv_draw_line(im, (float)(a->x - 5), y, (float)a->x, y, CV_BLACK, 1);
        if (yfmt == 1) snprintf(s, sizeof s, "%g%%", round(v * 1000) / 10);
        else if (yfmt == 2) snprintf(s, sizeof s, "1e%d", (int)lround(v));
        else snprintf(s, sizeof s, "%g", fabs(v) < 1e-12 ? 0 : v);
        text_fit(im, s, a->x - 8, (int)y + 5, 70, 0.45, CV_BLACK, 1, 2);
    }
    cv_draw_rect(im, a->x, a->y, a->w + 1, a->h + 1, CV_BLACK, 1);
    text_fit(im, title, a->x + a->w / 2, a->y - 12, a->w, 0.6, CV_BLACK, 1, 1);
    text_fit(im, xlabel, a->x + a->w / 2, a->y + a->h + 44, a->w, 0.5, 0x404040, 1, 1);
}

enum { STYLE_SOLID = 0, STYLE_DASHED, STYLE_DOTTED };

// A polyline with a dash pattern (pixels on, pixels off), continued across the points.
static void draw_styled(Image *im, const float *xy, int n, uint32_t rgb, int thick, int style) {
    if (n < 2) return;
    if (style == STYLE_SOLID) {
        cv_draw_polyline(im, xy, n, 0, rgb, thick);
        return;
    }
    double on = style == STYLE_DASHED ? 9 : 2.5, off = style == STYLE_DASHED ? 6 : 4, phase = 0;
    for (int i = 0; i + 1 < n; i++) {
        double x0 = xy[2 * i], y0 = xy[2 * i + 1], dx = xy[2 * i + 2] - x0, dy = xy[2 * i + 3] - y0;
        double len = sqrt(dx * dx + dy * dy), t = 0;
        while (t < len) {
            double period = phase < on ? on - phase : on + off - phase, step = fmin(period, len - t);
            if (phase < on)
                cv_draw_line(im, (float)(x0 + dx * t / len), (float)(y0 + dy * t / len),
                             (float)(x0 + dx * (t + step) / len), (float)(y0 + dy * (t + step) / len), rgb,
                             thick);
            t += step;
            phase = fmod(phase + step, on + off);
        }
    }
}

// A column's series kind: "lr", or the part before "_loss" / "_acc" ("train", "val", ...).
static void col_kind(const char *name, char *kind, size_t len) {
    const char *us = strrchr(name, '_');
    size_t n = us && strcmp(name, "lr") ? (size_t)(us - name) : strlen(name);
    snprintf(kind, len, "%.*s", (int)n, name);
}

static int kind_style(const char *kind) {
    return !strcmp(kind, "train")                        ? STYLE_DASHED
           : !strcmp(kind, "val") || !strcmp(kind, "lr") ? STYLE_SOLID
                                                         : STYLE_DOTTED;
}

static const char *kind_label(const char *kind) {
    return !strcmp(kind, "train") ? "train"
           : !strcmp(kind, "val") ? "validation"
           : !strcmp(kind, "lr")  ? "learning rate"
                                  : kind;
}

static const uint32_t PALETTE[MAX_RUNS] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b,
                                           0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf, 0x000080, 0x808000};

// The colour of a series of run r: per run with several runs, per kind with one.
static uint32_t kind_colour(int nruns, int r, const char *kind) {
    if (nruns > 1) return PALETTE[r % MAX_RUNS];
    return !strcmp(kind, "train") ? PALETTE[0]
           : !strcmp(kind, "val") ? PALETTE[1]
           : !strcmp(kind, "lr")  ? PALETTE[2]
                                  : PALETTE[3];
}

// Does column c of log l belong to panel p (0 loss, 1 accuracy, 2 learning rate)?
static int in_panel(const Log *l, int c, int p) {
    const char *n = l->col[c];
    return p == 0 ? ends_with(n, "_loss") : p == 1 ? ends_with(n, "_acc") : !strcmp(n, "lr");
}

static void draw_panel(Image *im, const Log *logs, int nruns, int p, int x, int y, int w, int h) {
    static const char *TITLES[3] = {"loss", "accuracy", "learning rate"};
    Axes a = {x, y, w, h, 1, 2, 0, 1, 0};
    double lo = INFINITY, hi = -INFINITY, emax = 1;
    for (int r = 0; r < nruns; r++) {
        const Log *l = &logs[r];
        int ec = log_col(l, "epoch");
        for (int i = 0; i < l->rows; i++) {
            double e = l->v[(size_t)i * l->ncols + ec];
            if (e > emax) emax = e;
            for (int c = 0; c < l->ncols; c++) {
                double v = l->v[(size_t)i * l->ncols + c];
                if (!in_panel(l, c, p) || !isfinite(v) || (p == 2 && v <= 0)) continue;
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
        }
    }
    int yfmt = p == 1 ? 1 : 0;
    double ystep;
    if (lo > hi) lo = 0, hi = 1;   // nothing to draw: an empty frame
    if (p == 2 && hi / lo > 20) {
        a.ylog = 1;
        yfmt = 2;
        a.y0 = floor(log10(lo));
        a.y1 = ceil(log10(hi));
        if (a.y1 <= a.y0) a.y1 = a.y0 + 1;
        ystep = a.y1 - a.y0 > 8 ? 2 : 1;
    } else {
        if (p == 2) lo = 0, hi *= 1.1;   // a linear learning rate: from 0
        if (hi - lo < 1e-9 * fmax(1, fabs(hi))) {
            double pad = fabs(hi) > 0 ? fabs(hi) * 0.1 : 1;
            lo -= pad;
            hi += pad;
        }
        ystep = nice_step(hi - lo, 5);
        a.y0 = floor(lo / ystep) * ystep;
        a.y1 = ceil(hi / ystep) * ystep;
        if (a.y1 <= a.y0) a.y1 = a.y0 + ystep;
    }
    a.x0 = 1;
    a.x1 = emax > 1 ? emax : 2;
    double xstep = a.x1 - a.x0 <= 10 ? 1 : nice_step(a.x1 - a.x0, 8);
    if (xstep < 1) xstep = 1;
    draw_axes(im, &a, TITLES[p], "epoch", yfmt, xstep, ystep);

    for (int r = 0; r < nruns; r++) {
        const Log *l = &logs[r];
        int ec = log_col(l, "epoch");
        float *xy = malloc(sizeof(float) * 2 * (size_t)l->rows);
        if (!xy) return;
        for (int c = 0; c < l->ncols; c++) {
            if (!in_panel(l, c, p)) continue;
            int n = 0;
            for (int i = 0; i < l->rows; i++) {
                double v = l->v[(size_t)i * l->ncols + c];
                if (!isfinite(v) || (a.ylog && v <= 0)) continue;
                xy[2 * n] = ax_x(&a, l->v[(size_t)i * l->ncols + ec]);
                xy[2 * n + 1] = ax_y(&a, v);
                n++;
            }
            char kind[64];
            col_kind(l->col[c], kind, sizeof kind);
            uint32_t rgb = kind_colour(nruns, r, kind);
            draw_styled(im, xy, n, rgb, 2, kind_style(kind));
            if (n <= 40)
                for (int i = 0; i < n; i++) cv_draw_circle(im, xy[2 * i], xy[2 * i + 1], 2.5f, rgb, -1);
        }
        int va = log_col(l, "val_acc");
        if (p == 1 && va >= 0) {   // the best validation accuracy
            int best = 0;
            for (int i = 1; i < l->rows; i++)
                if (l->v[(size_t)i * l->ncols + va] > l->v[(size_t)best * l->ncols + va]) best = i;
            double bv = l->v[(size_t)best * l->ncols + va], be = l->v[(size_t)best * l->ncols + ec];
            float bx = ax_x(&a, be), by = ax_y(&a, bv);
            cv_draw_circle(im, bx, by, 7, kind_colour(nruns, r, "val"), 2);
            if (nruns == 1) {
                char s[64];
                snprintf(s, sizeof s, "best %.2f%% @ %g", 100 * bv, be);
                int tw;
                cv_text_size(s, 0.45, 1, &tw, NULL, NULL);
                int tx = (int)bx + 10 + tw > a.x + a.w ? (int)bx - 10 - tw : (int)bx + 10;
                int ty = (int)by - 12 - a.y > 16 ? (int)by - 12 : (int)by + 22;
                cv_draw_text(im, s, tx, ty, 0.45, CV_BLACK, 1);
            }
        }
        free(xy);
    }
}

// A legend entry: a short line in the series' style and colour, then the text. Returns its width.
static int legend_entry(Image *im, int x, int y, uint32_t rgb, int style, const char *text) {
    float xy[4] = {(float)x, (float)y - 5, (float)x + 34, (float)y - 5};
    draw_styled(im, xy, 2, rgb, 2, style);
    int tw;
    cv_text_size(text, 0.5, 1, &tw, NULL, NULL);
    cv_draw_text(im, text, x + 42, y, 0.5, CV_BLACK, 1);
    return 42 + tw + 26;
}

static int draw_figure(const Log *logs, int nruns, const char *path, char *err, size_t errlen) {
    enum { PW = 470, PH = 360, ML = 80, MR = 24, TOP = 80, LEG_ROW = 26, BOTTOM = 62 };
    // legend: one row of series styles; with several runs, rows of run colours below it
    int W = 3 * (ML + PW + MR), legend_rows = nruns > 1 ? 1 + (nruns + 2) / 3 : 1;
    int H = TOP + legend_rows * LEG_ROW + 30 + PH + BOTTOM;
    Image im;
    if (image_new(&im, W, H, 3)) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    cv_fill_rect(&im, 0, 0, W, H, 0xf6f6f6);
    char s[512];
    if (nruns == 1) snprintf(s, sizeof s, "learning curves: %s (%d epochs)", logs[0].path, logs[0].rows);
    else snprintf(s, sizeof s, "learning curves: %d runs", nruns);
    text_fit(&im, s, 20, 36, W - 40, 0.75, CV_BLACK, 2, 0);
    // legend
    int ly = TOP - 20 + LEG_ROW, lx = 20;
    char kinds[MAX_COLS][64];
    int nk = 0;
    for (int r = 0; r < nruns; r++)   // the distinct series kinds, in first-seen order
        for (int c = 0; c < logs[r].ncols; c++) {
            if (!(in_panel(&logs[r], c, 0) || in_panel(&logs[r], c, 1) || in_panel(&logs[r], c, 2))) continue;
            char kind[64];
            col_kind(logs[r].col[c], kind, sizeof kind);
            int dup = 0;
            for (int k = 0; k < nk; k++) dup |= !strcmp(kinds[k], kind);
            if (!dup && nk < MAX_COLS) memcpy(kinds[nk++], kind, sizeof kind);
        }
    for (int k = 0; k < nk; k++)
        lx += legend_entry(&im, lx, ly, nruns > 1 ? 0x404040 : kind_colour(1, 0, kinds[k]),
                           kind_style(kinds[k]), kind_label(kinds[k]));
    for (int r = 0; r < nruns && nruns > 1; r++) {
        const Log *l = &logs[r];
        int va = log_col(l, "val_acc"), best = 0;
        for (int i = 1; va >= 0 && i < l->rows; i++)
            if (l->v[(size_t)i * l->ncols + va] > l->v[(size_t)best * l->ncols + va]) best = i;
        if (va >= 0)
            snprintf(s, sizeof s, "%s (best val %.2f%% @ %g)", l->name,
                     100 * l->v[(size_t)best * l->ncols + va],
                     l->v[(size_t)best * l->ncols + log_col(l, "epoch")]);
        else snprintf(s, sizeof s, "%s", l->name);
        int row = 1 + r / 3, x = 20 + (r % 3) * (W - 40) / 3;
        cv_fill_rect(&im, x, ly + row * LEG_ROW - 14, 34, 12, PALETTE[r % MAX_RUNS]);
        text_fit(&im, s, x + 42, ly + row * LEG_ROW, (W - 40) / 3 - 50, 0.5, CV_BLACK, 1, 0);
    }
    int py = TOP + legend_rows * LEG_ROW + 30;
    for (int p = 0; p < 3; p++) draw_panel(&im, logs, nruns, p, p * (ML + PW + MR) + ML, py, PW, PH);
    int rc = cv_imwrite(path, &im, 0, err, errlen);
    image_free(&im);
    return rc;
}

int plot_main(int argc, char **argv) {
    const char *runs[MAX_RUNS], *out = NULL;
    int nruns = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP, stdout);
            return 0;
        }
        if (!strcmp(a, "--out")) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, "emocam-train plot: --out needs a value (FILE.png)\n");
                return 2;
            }
            out = argv[++i];
            const char *dot = strrchr(out, '.');
            if (!dot || (strcasecmp(dot, ".png") && strcasecmp(dot, ".jpg") && strcasecmp(dot, ".jpeg"))) {
                fprintf(stderr, "emocam-train plot: --out '%s': want a .png (or .jpg) file\n", out);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "emocam-train plot: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (nruns == MAX_RUNS) {
            fprintf(stderr, "emocam-train plot: at most %d runs in one figure\n", MAX_RUNS);
            return 2;
        } else {
            runs[nruns++] = a;
        }
    }
    if (!nruns) {
        fprintf(stderr, "emocam-train plot: missing RUN (see --help)\n");
        return 2;
    }
    if (nruns > 1 && !out) {
        fprintf(stderr, "emocam-train plot: several runs: give --out FILE.png\n");
        return 2;
    }
    Log logs[MAX_RUNS];
    char err[EMO_ERRLEN];
    int rc = 0, loaded = 0;
    for (int r = 0; r < nruns && !rc; r++) {
        if (log_read(runs[r], &logs[r], err, sizeof err)) {
            fprintf(stderr, "emocam-train plot: %s\n", err);
            rc = 1;
        }
        loaded = r + 1;
    }
    char *def = NULL;
    if (!rc && !out) {
        struct stat st;
        int is_file = stat(runs[0], &st) == 0 && S_ISREG(st.st_mode);
        if (is_file) {   // beside the CSV
            const char *slash = strrchr(runs[0], '/');
            size_t dl = slash ? (size_t)(slash - runs[0]) : 0;
            def = malloc(dl + 16);
            if (def) snprintf(def, dl + 16, "%.*s%scurves.png", (int)dl, runs[0], slash ? "/" : "");
        } else {
            def = path_join(runs[0], "curves.png");
        }
        out = def;
        if (!out) {
            fprintf(stderr, "emocam-train plot: out of memory\n");
            rc = 1;
        }
    }
    for (int r = 0; r < nruns && !rc; r++) {
        const Log *l = &logs[r];
        int ec = log_col(l, "epoch"), va = log_col(l, "val_acc"), vl = log_col(l, "val_loss");
        int tl = log_col(l, "train_loss"), lr = log_col(l, "lr");
        const double *last = l->v + (size_t)(l->rows - 1) * l->ncols;
        printf("%s: %d epochs", l->name, l->rows);
        if (va >= 0) {
            int best = 0;
            for (int i = 1; i < l->rows; i++)
                if (l->v[(size_t)i * l->ncols + va] > l->v[(size_t)best * l->ncols + va]) best = i;
            printf(", best val_acc %.4f at epoch %g", l->v[(size_t)best * l->ncols + va],
                   l->v[(size_t)best * l->ncols + ec]);
        }
        if (tl >= 0) printf(", last train_loss %.4f", last[tl]);
        if (vl >= 0) printf(", val_loss %.4f", last[vl]);
        if (lr >= 0) printf(", lr %g", last[lr]);
        printf("\n");
    }
    if (!rc) {
        if (draw_figure(logs, nruns, out, err, sizeof err)) {
            fprintf(stderr, "emocam-train plot: %s\n", err);
            rc = 1;
        } else {
            printf("wrote %s\n", out);
        }
    }
    for (int r = 0; r < loaded; r++) log_free(&logs[r]);
    free(def);
    return rc;
}
