// test_eval.c: emocam-train eval and plot, run as programs, on data made here (class folders of
// PNG faces and tiny untrained networks; no ../shared needed):
//   - eval with a weights file, and with an ensemble list and TTA and Grad-CAM, writes
//     confusion.png, mistakes.png, metrics.json, predictions.csv and gradcam.png, and
//     metrics.json's figures agree with predictions.csv;
//   - bad arguments exit 2 with one line naming the argument; missing or broken files exit 1
//     with one line naming the file (and the line, for a list);
//   - plot draws one run and several, and refuses bad logs naming file and line.
//   - export writes float16 weights within half a float16 ulp of each value, and float32 back at
//     the original size; bad arguments and files as above.
//   - average writes the mean of its inputs' parameters, with batchnorm statistics measured on
//     the data (or averaged, without --data); bad arguments and files as above, and no output
//     left behind by a failure.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cv.h"
#include "data.h"
#include "testutil.h"

static char *fmt(const char *f, const char *a, const char *b) {
    size_t len = strlen(f) + strlen(a) + strlen(b) + 1;
    char *s = malloc(len);
    snprintf(s, len, f, a, b);
    return s;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)n + 1, 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = 0;
    fclose(f);
    return s;
}

static char *g_stderr;   // the last run's stderr

// Run emocam-train with args (a shell fragment; paths here have no spaces). Exit status.
static int run(const char *args) {
    const char *tmp = test_tmpdir();
    size_t len = strlen(EMOCAM_TRAIN_BIN) + strlen(args) + 2 * strlen(tmp) + 64;
    char *cmd = malloc(len);
    snprintf(cmd, len, "%s %s >%s/out.txt 2>%s/err.txt", EMOCAM_TRAIN_BIN, args, tmp, tmp);
    int st = system(cmd);
    free(cmd);
    free(g_stderr);
    char *ep = fmt("%s/err.txt%s", tmp, "");
    g_stderr = slurp(ep);
    free(ep);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

// Expect exit status `want` and a one-line message holding `says`.
static void expect(const char *args, int want, const char *says) {
    int rc = run(args);
    CHECK(rc == want, "'%s': exit %d, want %d (stderr: %s)", args, rc, want, g_stderr);
    CHECK(strstr(g_stderr, says) != NULL, "'%s': stderr '%s' lacks '%s'", args, g_stderr, says);
    CHECK(lines(g_stderr) == 1, "'%s': %d lines on stderr: %s", args, lines(g_stderr), g_stderr);
}

static int is_png(const char *dir, const char *name, int min_w) {
    char *p = fmt("%s/%s", dir, name), err[512];
    Image im;
    int ok = cv_imread(p, 3, &im, err, sizeof err) == 0 && im.w >= min_w && im.h >= 100;
    image_free(&im);
    free(p);
    return ok;
}

static void make_net(const char *arch, const char *path, uint64_t seed) {
    char err[EMO_ERRLEN];
    Net *net = net_parse(arch, "test.arch", err, sizeof err);
    CHECK(net != NULL, "%s", err);
    if (!net) return;
    Rng r;
    rng_seed(&r, seed);
    net_init(net, &r);
    CHECK(net_save(net, path, err, sizeof err) == 0, "%s", err);
    net_free(net);
}

// DATA/<class>/face<k>.png: 4 made-up faces per class, each class with its own pattern.
static void make_data(const char *data) {
    mkdir(data, 0755);
    Rng r;
    rng_seed(&r, 3);
    for (int c = 0; c < NCLASSES; c++) {
        char *dir = fmt("%s/%s", data, CLASS_NAMES[c]);
        mkdir(dir, 0755);
        for (int k = 0; k < 4; k++) {
            Image im;
            image_new(&im, FACE_W, FACE_H, 1);
            for (int y = 0; y < FACE_H; y++)
                for (int x = 0; x < FACE_W; x++)
                    image_row(&im, y)[x] = (unsigned char)((x * (c + 1) + y * k) % 200 + rng_int(&r, 56));
            char name[32], err[512];
            snprintf(name, sizeof name, "face%d.png", k);
            char *p = fmt("%s/%s", dir, name);
            CHECK(cv_imwrite(p, &im, 0, err, sizeof err) == 0, "%s", err);
            free(p);
            image_free(&im);
        }
        free(dir);
    }
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_eval(const char *tmp) {
    static const char *ARCH_A =
        "input c=1 h=48 w=48 mean=128 std=64\n"
        "conv out=4 k=3 pad=1\nbn\nrelu\nmaxpool k=4\nconv out=6 k=3 pad=1\nrelu\nmaxpool k=2\n"
        "flatten\ndropout p=0.2\nlinear out=7\n";
    static const char *ARCH_B =
        "input c=1 h=48 w=48 mean=0 std=255\nconv out=3 k=5 stride=4 pad=2\nrelu\ngap\nlinear out=7\n";
    char *data = fmt("%s/faces%s", tmp, ""), *wa = fmt("%s/a.weights%s", tmp, ""),
         *wb = fmt("%s/b.weights%s", tmp, "");
    char *list = fmt("%s/ens.list%s", tmp, ""), *out = fmt("%s/out%s", tmp, ""),
         *out2 = fmt("%s/out2%s", tmp, "");
    make_data(data);
    make_net(ARCH_A, wa, 1);
    make_net(ARCH_B, wb, 2);
    write_text(list, "# two members\n2 a.weights\n1 b.weights  # the small one\n");
    char args[4096];

    // one network, every image (class folders have no Kaggle split)
    snprintf(args, sizeof args,
             "eval --weights %s --data %s --set all --no-cache --out %s --threads 1 --mistakes 12", wa, data,
             out);
    int rc = run(args);
    CHECK(rc == 0, "eval: exit %d: %s", rc, g_stderr);
    CHECK(is_png(out, "confusion.png", 600) && is_png(out, "mistakes.png", 600), "eval's PNGs");
    char *jp = fmt("%s/metrics.json%s", out, ""), *pp = fmt("%s/predictions.csv%s", out, "");
    char *json = slurp(jp), *pred = slurp(pp);
    CHECK(strstr(json, "\"n\": 28,") && strstr(json, "\"accuracy\": ") && strstr(json, "\"macro_f1\": ") &&
              strstr(json, "\"per_class\": [") && strstr(json, "\"confusion\": [") &&
              strstr(json, "\"class\": \"surprise\"") && strstr(json, "\"support\": 4,"),
          "metrics.json: %s", json);
    CHECK(lines(pred) == 29 && !strncmp(pred, "name,label,predicted,p_angry,", 29),
          "predictions.csv: %d lines", lines(pred));
    // the accuracy in metrics.json is the share of rows whose label is the prediction
    int right = 0, rows = 0;
    for (char *l = strchr(pred, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
        int lab, pr;
        char *c1 = strchr(l + 1, ',');
        if (c1 && sscanf(c1 + 1, "%d,%d", &lab, &pr) == 2) right += lab == pr, rows++;
    }
    char want[64];
    snprintf(want, sizeof want, "\"correct\": %d,", right);
    CHECK(rows == 28 && strstr(json, want), "metrics.json disagrees with predictions.csv (%d of %d right)",
          right, rows);
    free(json);
    free(pred);

    // an ensemble with TTA and Grad-CAM (the default layer, and one named)
    snprintf(
        args, sizeof args,
        "eval --ensemble %s --data %s --set all --no-cache --out %s --tta 2 --cam %s/cam --cam-per-class 2",
        list, data, out2, out2);
    rc = run(args);
    CHECK(rc == 0, "eval --ensemble: exit %d: %s", rc, g_stderr);
    char *camdir = fmt("%s/cam%s", out2, "");
    CHECK(is_png(out2, "confusion.png", 600) && is_png(camdir, "gradcam.png", 600), "ensemble PNGs");
    free(jp);
    jp = fmt("%s/metrics.json%s", out2, "");
    json = slurp(jp);
    CHECK(strstr(json, "\"tta\": 2,") && strstr(json, "a.weights\", \"weight\": 0.666667") &&
              strstr(json, "b.weights\", \"weight\": 0.333333"),
          "ensemble metrics.json: %s", json);
    free(json);
    snprintf(
        args, sizeof args,
        "eval --ensemble %s --data %s --set all --no-cache --out %s --cam %s --cam-member 2 --cam-layer 1",
        list, data, out2, camdir);
    rc = run(args);
    CHECK(rc == 0, "eval --cam-member 2 --cam-layer 1: exit %d: %s", rc, g_stderr);
    // 80/20 of the 28 images: the validation part
    snprintf(args, sizeof args,
             "eval --weights %s --data %s --split 80/20 --seed 4 --no-cache --out %s --mistakes 0", wa, data,
             out2);
    rc = run(args);
    free(jp);
    jp = fmt("%s/metrics.json%s", out2, "");
    json = slurp(jp);
    CHECK(rc == 0 && strstr(json, "\"set\": \"val\"") && strstr(json, "\"split\": \"80/20\""),
          "80/20: exit %d: %s", rc, g_stderr);
    free(json);

    // bad arguments: exit 2, one line naming the argument
    expect("eval", 2, "--weights");
    snprintf(args, sizeof args, "eval --weights %s", wa);
    expect(args, 2, "--data");
    snprintf(args, sizeof args, "eval --weights %s --ensemble %s --data %s", wa, list, data);
    expect(args, 2, "one of --weights FILE or --ensemble LIST");
    snprintf(args, sizeof args, "eval --weights %s --data %s --tta 5", wa, data);
    expect(args, 2, "--tta");
    snprintf(args, sizeof args, "eval --weights %s --data %s --tta", wa, data);
    expect(args, 2, "--tta");
    snprintf(args, sizeof args, "eval --weights %s --data %s --set bogus", wa, data);
    expect(args, 2, "--set");
    snprintf(args, sizeof args, "eval --weights %s --data %s --split 50/50", wa, data);
    expect(args, 2, "--split");
    snprintf(args, sizeof args, "eval --weights %s --data %s --split 80/20 --set public", wa, data);
    expect(args, 2, "--split");
    snprintf(args, sizeof args, "eval --weights %s --data %s --threads 0", wa, data);
    expect(args, 2, "--threads");
    snprintf(args, sizeof args, "eval --weights %s --data %s --seed -3", wa, data);
    expect(args, 2, "--seed");
    snprintf(args, sizeof args, "eval --weights %s --data %s --bogus", wa, data);
    expect(args, 2, "--bogus");
    snprintf(args, sizeof args, "eval --weights %s --data %s stray", wa, data);
    expect(args, 2, "stray");
    snprintf(args, sizeof args, "eval --weights %s --data %s --cam-layer 3", wa, data);
    expect(args, 2, "--cam");
    snprintf(args, sizeof args, "eval --weights %s --weights %s --data %s", wa, wa, data);
    expect(args, 2, "--weights is given twice");
    snprintf(args, sizeof args, "eval --weights %s --data %s --cache x --no-cache", wa, data);
    expect(args, 2, "--no-cache");
    snprintf(args, sizeof args,
             "eval --weights %s --data %s --set all --no-cache --out %s --cam %s --cam-layer nope", wa, data,
             out2, camdir);
    expect(args, 2, "--cam-layer 'nope'");
    snprintf(args, sizeof args,
             "eval --weights %s --data %s --set all --no-cache --out %s --cam %s --cam-member 3", list, data,
             out2, camdir);
    expect(args, 2, "--weights");   // a list given as --weights
    snprintf(args, sizeof args,
             "eval --ensemble %s --data %s --set all --no-cache --out %s --cam %s --cam-member 3", list, data,
             out2, camdir);
    expect(args, 2, "--cam-member 3");

    // missing or broken files: exit 1, one line naming the file
    snprintf(args, sizeof args, "eval --weights %s/none.weights --data %s", tmp, data);
    expect(args, 1, "none.weights");
    snprintf(args, sizeof args, "eval --weights %s --data %s/none", wa, tmp);
    expect(args, 1, "/none");
    char *badlist = fmt("%s/bad.list%s", tmp, "");
    write_text(badlist, "1 a.weights\n\n0.5 gone.weights\n");
    snprintf(args, sizeof args, "eval --ensemble %s --data %s", badlist, data);
    expect(args, 1, "bad.list:3: ");
    snprintf(args, sizeof args, "eval --weights %s --data %s --no-cache", wa, data);
    expect(args, 1, "no PublicTest images");   // class folders: no Kaggle split

    free(badlist);
    free(camdir);
    free(jp);
    free(pp);
    free(data);
    free(wa);
    free(wb);
    free(list);
    free(out);
    free(out2);
}

static void test_plot(const char *tmp) {
    char *r1 = fmt("%s/run1%s", tmp, ""), *r2 = fmt("%s/run2%s", tmp, ""), *r3 = fmt("%s/run3%s", tmp, "");
    mkdir(r1, 0755);
    mkdir(r2, 0755);
    mkdir(r3, 0755);
    char *l1 = fmt("%s/log.csv%s", r1, ""), *l2 = fmt("%s/log.csv%s", r2, ""),
         *l3 = fmt("%s/log.csv%s", r3, "");
    const char *head = "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,img_per_s\n";
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "%s", head);
    for (int e = 1; e <= 12; e++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%d,%.4f,%.4f,%.4f,%.4f,%g,10.5,300\n", e,
                              1.8 / e + 0.5, 0.3 + 0.04 * e, 1.5 / e + 0.9, 0.35 + 0.02 * e,
                              0.01 / (1 << (e / 4)));
    write_text(l1, text);
    write_text(
        l2,
        "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,img_per_s\n1,1.7,0.3,1.5,0.4,0.001,50,500\n");
    write_text(l3, "epoch,train_loss,val_loss\n1,1.7,1.5\n2,1.6,x\n");
    char args[4096], *png = fmt("%s/cmp.png%s", tmp, "");
    snprintf(args, sizeof args, "plot %s", r1);
    int rc = run(args);
    CHECK(rc == 0 && is_png(r1, "curves.png", 1000), "plot one run: exit %d: %s", rc, g_stderr);
    snprintf(args, sizeof args, "plot %s %s/ --out %s", r1, r2, png);
    rc = run(args);
    CHECK(rc == 0 && is_png(tmp, "cmp.png", 1000), "plot two runs: exit %d: %s", rc, g_stderr);
    snprintf(args, sizeof args, "plot %s --out %s/curves1.png", l1, tmp);   // the CSV itself
    rc = run(args);
    CHECK(rc == 0 && is_png(tmp, "curves1.png", 1000), "plot a CSV: exit %d: %s", rc, g_stderr);

    expect("plot", 2, "missing RUN");
    snprintf(args, sizeof args, "plot %s %s", r1, r2);
    expect(args, 2, "--out");
    snprintf(args, sizeof args, "plot %s --out %s/x.txt", r1, tmp);
    expect(args, 2, "--out");
    snprintf(args, sizeof args, "plot %s --bogus", r1);
    expect(args, 2, "--bogus");
    snprintf(args, sizeof args, "plot %s/none", tmp);
    expect(args, 1, "none/log.csv: cannot open");
    snprintf(args, sizeof args, "plot %s", r3);
    expect(args, 1, "run3/log.csv:3: ");
    free(r1);
    free(r2);
    free(r3);
    free(l1);
    free(l2);
    free(l3);
    free(png);
}

// export: float16 at half the size, read back by eval with the same predictions on these
// faces; back to float32; bad arguments and files.
static void test_export(const char *tmp) {
    static const char *ARCH = "input c=1 h=48 w=48\nconv out=8 k=3 stride=2 pad=1\nbn\nrelu\n"
                              "gap\nlinear out=7\n";
    char *w = fmt("%s/ex.weights%s", tmp, ""), *h = fmt("%s/ex16.weights%s", tmp, ""),
         *back = fmt("%s/ex32.weights%s", tmp, ""), args[4096];
    make_net(ARCH, w, 5);
    snprintf(args, sizeof args, "export %s %s", w, h);
    int rc = run(args);
    CHECK(rc == 0, "export: exit %d: %s", rc, g_stderr);
    struct stat s1, s2, s3;
    CHECK(stat(w, &s1) == 0 && stat(h, &s2) == 0 && s2.st_size < s1.st_size * 3 / 4,
          "float16 file is not smaller");
    char err[EMO_ERRLEN];
    Net *a = net_load(w, err, sizeof err), *b = net_load(h, err, sizeof err);
    CHECK(a && b, "%s", err);
    for (int t = 0; a && b && t < a->ntensors; t++) {
        const real *x = net_tensor_data(a, &a->tensors[t]), *y = net_tensor_data(b, &b->tensors[t]);
        for (size_t j = 0; j < a->tensors[t].count; j++)
            CHECK(fabs((double)y[j] - x[j]) <= fabs((double)x[j]) * 0x1p-11 + 0x1p-25,
                  "tensor %s[%zu]: %g -> %g", a->tensors[t].name, j, (double)x[j], (double)y[j]);
    }
    net_free(a);
    net_free(b);
    snprintf(args, sizeof args, "export %s %s --f32", h, back);
    rc = run(args);
    CHECK(rc == 0 && stat(back, &s3) == 0 && s3.st_size == s1.st_size, "export --f32: exit %d: %s",
          rc, g_stderr);
    expect("export", 2, "missing IN.weights and OUT.weights");
    snprintf(args, sizeof args, "export %s", w);
    expect(args, 2, "missing OUT.weights");
    snprintf(args, sizeof args, "export %s %s %s", w, h, back);
    expect(args, 2, "give one IN and one OUT");
    snprintf(args, sizeof args, "export %s %s --half", w, h);
    expect(args, 2, "--half");
    snprintf(args, sizeof args, "export %s/none.weights %s", tmp, h);
    expect(args, 1, "none.weights: cannot open");
    snprintf(args, sizeof args, "export %s %s/nodir/x.weights", w, tmp);
    expect(args, 1, "nodir/x.weights: cannot write");
    free(w);
    free(h);
    free(back);
}

// average: the parameters' mean; statistics measured with --data, averaged without.
static void test_average(const char *tmp) {
    static const char *ARCH = "input c=1 h=48 w=48\nconv out=8 k=3 stride=2 pad=1\nbn\nrelu\n"
                              "gap\nlinear out=7\n";
    static const char *OTHER = "input c=1 h=48 w=48\nconv out=4 k=3 stride=2 pad=1\nbn\nrelu\n"
                               "gap\nlinear out=7\n";
    char *w[3], *o = fmt("%s/avg.weights%s", tmp, ""), *o2 = fmt("%s/avg2.weights%s", tmp, ""),
         *data = fmt("%s/avgdata%s", tmp, ""), *x = fmt("%s/other.weights%s", tmp, ""), args[4096];
    char err[EMO_ERRLEN];
    make_data(data);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "/av%d.weights", i);
        w[i] = fmt("%s%s", tmp, name);
        make_net(ARCH, w[i], 20 + (uint64_t)i);
        // running statistics of their own, so that their mean is not the initial 0 and 1
        Net *n = net_load(w[i], err, sizeof err);
        CHECK(n != NULL, "%s", err);
        for (size_t j = 0; n && j < n->nbufs; j++) n->bufs[j] = (real)(0.5 + 0.25 * i + 0.01 * j);
        CHECK(n && net_save(n, w[i], err, sizeof err) == 0, "%s", err);
        net_free(n);
    }
    make_net(OTHER, x, 9);
    snprintf(args, sizeof args, "average %s %s %s %s --data %s --split 80/20 --no-cache --threads 1",
             o, w[0], w[1], w[2], data);
    int rc = run(args);
    CHECK(rc == 0, "average: exit %d: %s", rc, g_stderr);
    snprintf(args, sizeof args, "average %s %s %s %s --f16", o2, w[0], w[1], w[2]);
    rc = run(args);
    CHECK(rc == 0, "average without --data: exit %d: %s", rc, g_stderr);
    Net *m[3], *a = net_load(o, err, sizeof err), *b = net_load(o2, err, sizeof err);
    CHECK(a && b, "%s", err);
    for (int i = 0; i < 3; i++) m[i] = net_load(w[i], err, sizeof err);
    int measured = 0;
    for (size_t j = 0; a && b && m[0] && m[1] && m[2] && j < a->nparams; j++) {
        double mean = ((double)m[0]->params[j] + m[1]->params[j] + m[2]->params[j]) / 3;
        CHECK(fabs(a->params[j] - mean) <= 1e-6 * (1 + fabs(mean)), "param %zu: %g, want %g", j,
              (double)a->params[j], mean);
        CHECK(fabs(b->params[j] - mean) <= fabs(mean) * 0x1p-11 + 1e-7, "f16 param %zu: %g, want %g",
              j, (double)b->params[j], mean);
    }
    for (size_t j = 0; a && b && m[0] && m[1] && m[2] && j < a->nbufs; j++) {
        double mean = ((double)m[0]->bufs[j] + m[1]->bufs[j] + m[2]->bufs[j]) / 3;
        CHECK(fabs(b->bufs[j] - mean) <= fabs(mean) * 0x1p-11, "statistic %zu: %g, want the mean %g",
              j, (double)b->bufs[j], mean);
        measured += fabs(a->bufs[j] - mean) > 1e-3;
    }
    CHECK(a && measured == (int)a->nbufs, "%d of %zu statistics measured", measured,
          a ? a->nbufs : 0);
    for (int i = 0; i < 3; i++) net_free(m[i]);
    net_free(a);
    net_free(b);

    expect("average", 2, "one or more IN.weights");
    snprintf(args, sizeof args, "average %s", o);
    expect(args, 2, "one or more IN.weights");
    snprintf(args, sizeof args, "average %s %s", w[0], w[0]);
    expect(args, 2, "both an input and the output");
    snprintf(args, sizeof args, "average %s %s --bn-images lots", o, w[0]);
    expect(args, 2, "--bn-images");
    snprintf(args, sizeof args, "average %s %s --aug p_spin=1", o, w[0]);
    expect(args, 2, "--aug");
    snprintf(args, sizeof args, "average %s %s --split 50/50", o, w[0]);
    expect(args, 2, "--split");
    snprintf(args, sizeof args, "average %s %s --bogus", o, w[0]);
    expect(args, 2, "--bogus");
    unlink(o);
    snprintf(args, sizeof args, "average %s %s %s", o, w[0], x);
    expect(args, 1, "another architecture");
    snprintf(args, sizeof args, "average %s %s %s/none.weights", o, w[0], tmp);
    expect(args, 1, "none.weights: cannot open");
    snprintf(args, sizeof args, "average %s %s %s --data %s/nodata --no-cache", o, w[0], w[1], tmp);
    expect(args, 1, "nodata");
    struct stat st;
    CHECK(stat(o, &st) != 0, "a failed average left %s behind", o);
    snprintf(args, sizeof args, "average %s/nodir/x.weights %s", tmp, w[0]);
    expect(args, 1, "nodir/x.weights: cannot write");
    for (int i = 0; i < 3; i++) free(w[i]);
    free(o);
    free(o2);
    free(data);
    free(x);
}

int main(void) {
    const char *tmp = test_tmpdir();
    test_eval(tmp);
    test_plot(tmp);
    test_export(tmp);
    test_average(tmp);
    free(g_stderr);
    return test_result("test_eval");
}
