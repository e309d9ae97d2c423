// test_eval_fer.c: emocam-train eval end to end on real FER2013 faces from ../shared (skipped,
// exit 77, where that is absent): a copy of the first 3 PublicTest images of each class (and
// one Training image per class) in the folder layout, a small untrained network, and eval
// with its defaults (the PublicTest images), with TTA and Grad-CAM. Checks the exit status,
// the PNGs and metrics.json, and that a second run from the cache gives the same figures.
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cv.h"
#include "data.h"
#include "testutil.h"

enum { PER_CLASS = 3 };

static char *fmt(const char *f, const char *a, const char *b, const char *c) {
    size_t len = strlen(f) + strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(len);
    snprintf(s, len, f, a, b, c);
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




static int run(const char *args, const char *tmp) {
    size_t len = strlen(EMOCAM_TRAIN_BIN) + strlen(args) + 2 * strlen(tmp) + 64;
    char *cmd = malloc(len);
    snprintf(cmd, len, "%s %s >%s/out.txt 2>%s/err.txt", EMOCAM_TRAIN_BIN, args, tmp, tmp);
    int st = system(cmd);
    free(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int png_ok(const char *dir, const char *name) {
    char *p = fmt("%s/%s%s", dir, name, ""), err[512];
    Image im;
    int ok = cv_imread(p, 3, &im, err, sizeof err) == 0 && im.w >= 600 && im.h >= 300;
    image_free(&im);
    free(p);
    return ok;
}

int main(void) {
    const char *fer = EMOCAM_SHARED "/data/fer2013";
    struct stat st;
    if (stat(fer, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("test_eval_fer: skipped: %s is absent\n", fer);
        return 77;
    }
    const char *tmp = test_tmpdir();
    // the folder layout: PER_CLASS PublicTest and one Training image per class
    char *root = fmt("%s/fer%s%s", tmp, "", "");
    mkdir(root, 0755);
    static const char *const TOPS[2] = {"test", "train"}, *const PREFIX[2] = {"PublicTest_", "Training_"};
    for (int t = 0; t < 2; t++) {
        char *top = fmt("%s/%s%s", root, TOPS[t], "");
        mkdir(top, 0755);
        for (int c = 0; c < NCLASSES; c++) {
            char *src = fmt("%s/%s/%s", fer, TOPS[t], CLASS_NAMES[c]),
                 *dst = fmt("%s/%s%s", top, CLASS_NAMES[c], "");
            mkdir(dst, 0755);
            char *names[PER_CLASS];
            int want = t ? 1 : PER_CLASS, n = first_files(src, PREFIX[t], names, want);
            CHECK(n == want, "%s: %d %s images", src, n, PREFIX[t]);
            for (int i = 0; i < n; i++) {
                char *from = fmt("%s/%s%s", src, names[i], ""), *to = fmt("%s/%s%s", dst, names[i], "");
                CHECK(copy_file(from, to) == 0, "copy %s", from);
                free(from);
                free(to);
                free(names[i]);
            }
            free(src);
            free(dst);
        }
        free(top);
    }

    // a small network (untrained: the figures are whatever they are; the plumbing is tested)
    static const char *ARCH =
        "input c=1 h=48 w=48 mean=131 std=78\n"
        "conv out=8 k=3 pad=1\nbn\nrelu\nmaxpool k=2\n"
        "conv out=8 k=3 pad=1\nbn\nrelu\nmaxpool k=2\n"
        "gap\nlinear out=7\n";
    char err[EMO_ERRLEN];
    Net *net = net_parse(ARCH, "fer.arch", err, sizeof err);
    CHECK(net != NULL, "%s", err);
    char *wp = fmt("%s/net.weights%s%s", tmp, "", ""), *out = fmt("%s/eval%s%s", tmp, "", "");
    if (net) {
        Rng r;
        rng_seed(&r, 11);
        net_init(net, &r);
        CHECK(net_save(net, wp, err, sizeof err) == 0, "%s", err);
        net_free(net);
    }
    char *cache = fmt("%s/data.cache%s%s", tmp, "", ""), args[4096];
    snprintf(args, sizeof args,
             "eval --weights %s --data %s --cache %s --out %s --tta 1 --cam %s --threads 2", wp, root, cache,
             out, out);
    int rc = run(args, tmp);
    char *ep = fmt("%s/err.txt%s%s", tmp, "", ""), *op = fmt("%s/out.txt%s%s", tmp, "", "");
    char *e = slurp(ep), *o = slurp(op);
    CHECK(rc == 0, "eval: exit %d: %s", rc, e);
    CHECK(strstr(o, "evaluating 21 PublicTest images") != NULL, "stdout: %s", o);
    CHECK(png_ok(out, "confusion.png") && png_ok(out, "mistakes.png") && png_ok(out, "gradcam.png"), "PNGs");
    char *jp = fmt("%s/metrics.json%s%s", out, "", ""), *json = slurp(jp);
    CHECK(strstr(json, "\"n\": 21,") && strstr(json, "\"set\": \"public\"") && strstr(json, "\"tta\": 1,") &&
              strstr(json, "\"support\": 3,") && strstr(json, "PublicTest_"),
          "metrics.json: %s", json);
    free(e);
    free(o);
    free(json);
    // the second run reads the cache the first wrote, and agrees with it
    char *first = slurp(jp);
    rc = run(args, tmp);
    o = slurp(op);
    json = slurp(jp);
    CHECK(rc == 0 && strstr(o, "from the cache") && !strcmp(first, json), "second run: exit %d", rc);
    free(o);
    free(json);
    free(first);

    free(root);
    free(wp);
    free(out);
    free(cache);
    free(ep);
    free(op);
    free(jp);
    return test_result("test_eval_fer");
}
