// test_ensemble.c: ensemble lists and ensemble_predict (model/ensemble.h), and Grad-CAM
// (model/gradcam.h), on tiny networks built from architecture text and saved to a temp folder.
//
//   - every list error names the list file and line (or the file, for an empty list);
//   - ensemble_predict equals the weighted average of each member's own softmax, computed here
//     with an unfolded net_load of each member (members differ in architecture, batchnorm
//     statistics and input normalisation), over more faces than one internal batch;
//   - tta 1 and 2 equal the average over views built here independently (flip; a 56x56
//     reflect-padded image and its five crops, each mirrored);
//   - members with their own tta= (one view, face + mirror, ten views in one list) each average
//     their own views, and --tta (ensemble_predict's tta) overrides every member's;
//   - members sharing their activation buffers and workspace (one deeper, with a residual
//     block and CBAM) still equal their own unshared forwards, at batch sizes that grow;
//   - a left-right symmetric face gives the same probabilities with tta 1 as with none, and a
//     constant face the same with tta 2;
//   - Grad-CAM on conv -> relu -> gap -> linear equals the class activation map computed by
//     hand from the linear weights: ReLU(sum_c W[t, c] / HW * A_c).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensemble.h"
#include "gradcam.h"
#include "testutil.h"

enum { F = 48, PX = F * F, K = 7 };

static const char *ARCH_A =
    "input c=1 h=48 w=48 mean=128 std=64\n"
    "conv out=4 k=3 stride=2 pad=1\n"
    "bn\n"
    "relu\n"
    "maxpool k=2\n"
    "flatten\n"
    "linear out=7\n";
static const char *ARCH_B =
    "input c=1 h=48 w=48 mean=0 std=255\n"
    "conv out=3 k=5 stride=4 pad=2\n"
    "relu\n"
    "gap\n"
    "linear out=7\n";
static const char *ARCH_C =   // 5 classes: not a face classifier
    "input c=1 h=48 w=48\n"
    "conv out=2 k=3 stride=4\n"
    "gap\n"
    "linear out=5\n";

static const char *ARCH_D =   // deeper: a residual block, CBAM, a max-pool after a fused ReLU
    "input c=1 h=48 w=48 mean=100 std=50\n"
    "conv out=8 k=3 pad=1 bias=0\n"
    "bn\n"
    "relu\n"
    "maxpool k=2\n"
    "residual\n"
    "  conv out=16 k=3 stride=2 pad=1 bias=0\n"
    "  bn\n"
    "  relu\n"
    "  conv out=16 k=3 pad=1 bias=0\n"
    "  bn\n"
    "shortcut\n"
    "  conv out=16 k=1 stride=2 bias=0\n"
    "  bn\n"
    "end\n"
    "relu\n"
    "cbam r=4 k=3\n"
    "conv out=16 k=3 pad=1\n"
    "relu\n"
    "gap\n"
    "dropout p=0.3\n"
    "linear out=7\n";

static char *path_in(const char *name) {
    const char *dir = test_tmpdir();
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    snprintf(p, len, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *name, const char *text) {
    char *p = path_in(name);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL, "cannot write %s", p);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(p);
}

// A member: architecture text, seeded parameters, non-trivial batchnorm statistics.
static void make_member(const char *arch, const char *name, uint64_t seed) {
    char err[EMO_ERRLEN];
    Net *net = net_parse(arch, name, err, sizeof err);
    CHECK(net != NULL, "%s", err);
    if (!net) return;
    Rng r;
    rng_seed(&r, seed);
    net_init(net, &r);
    for (int t = 0; t < net->ntensors; t++) {
        const Tensor *tt = &net->tensors[t];
        real *d = net_tensor_data(net, tt);
        for (size_t i = 0; i < tt->count; i++) {
            if (strstr(tt->name, "running_var")) d[i] = (real)(0.5 + rng_uniform(&r));
            else if (strstr(tt->name, "running_mean") || strstr(tt->name, ".beta"))
                d[i] = (real)(0.3 * rng_normal(&r));
            else if (strstr(tt->name, ".gamma")) d[i] = (real)(0.7 + 0.6 * rng_uniform(&r));
        }
    }
    char *p = path_in(name);
    CHECK(net_save(net, p, err, sizeof err) == 0, "%s", err);
    free(p);
    net_free(net);
}

// Load a list written as text; expect failure with `want` in the message.
static void expect_error(const char *text, const char *want) {
    write_file("bad.list", text);
    char *p = path_in("bad.list"), err[EMO_ERRLEN] = "";
    Ensemble *e = ensemble_load(p, err, sizeof err);
    CHECK(e == NULL, "list %s loaded", text);
    CHECK(strstr(err, want) != NULL, "list '%s': message '%s' lacks '%s'", text, err, want);
    ensemble_free(e);
    free(p);
}

// The tta line: the augmentation a list was chosen for, none without one.
static void test_tta_line(void) {
    static const char *const LISTS[] = {"1 a.weights\n", "tta flip  # chosen with it\n1 a.weights\n",
                                        "1 a.weights\n\ttta crops\n", "tta none\n1 a.weights\n"};
    static const int WANT[] = {ENS_TTA_NONE, ENS_TTA_FLIP, ENS_TTA_CROPS, ENS_TTA_NONE};
    for (int i = 0; i < 4; i++) {
        write_file("tta.list", LISTS[i]);
        char *p = path_in("tta.list"), err[EMO_ERRLEN] = "";
        Ensemble *e = ensemble_load(p, err, sizeof err);
        CHECK(e && e->n == 1 && e->tta == WANT[i], "list '%s': %s", LISTS[i], e ? "wrong tta" : err);
        ensemble_free(e);
        free(p);
    }
    // a member's own tta= wins over the list's line, wherever that line is
    write_file("tta.list", "1 a.weights tta=none\n2 b.weights\ntta crops\n");
    char *p = path_in("tta.list"), err[EMO_ERRLEN] = "";
    Ensemble *e = ensemble_load(p, err, sizeof err);
    CHECK(e && e->n == 2, "mixed list: %s", err);
    if (e && e->n == 2) {
        CHECK(e->tta == ENS_TTA_CROPS && e->m[0].tta == ENS_TTA_NONE && e->m[0].own_tta &&
                  e->m[1].tta == ENS_TTA_CROPS && !e->m[1].own_tta,
              "members' tta: %d %d", e->m[0].tta, e->m[1].tta);
        CHECK(ensemble_member_tta(e, 0, ENS_TTA_LIST) == ENS_TTA_NONE &&
                  ensemble_member_tta(e, 1, ENS_TTA_LIST) == ENS_TTA_CROPS &&
                  ensemble_member_tta(e, 0, ENS_TTA_FLIP) == ENS_TTA_FLIP,
              "ensemble_member_tta");
        CHECK(ensemble_uniform_tta(e, ENS_TTA_LIST) == ENS_TTA_LIST &&
                  ensemble_uniform_tta(e, ENS_TTA_NONE) == ENS_TTA_NONE,
              "ensemble_uniform_tta");
        CHECK(ensemble_views(e, ENS_TTA_LIST) == 11 && ensemble_views(e, ENS_TTA_FLIP) == 4,
              "ensemble_views: %d %d", ensemble_views(e, ENS_TTA_LIST), ensemble_views(e, 1));
    }
    ensemble_free(e);
    free(p);
    for (int t = 0; t < 3; t++)
        CHECK(ensemble_tta_parse(ensemble_tta_name(t)) == t, "tta %d: name round trip", t);
    CHECK(ensemble_tta_parse("1") == -1 && ensemble_tta_parse("") == -1 &&
              !strcmp(ensemble_tta_name(3), "?"),
          "unknown tta names");
}

static void test_parse_errors(void) {
    expect_error("1.0\n", "bad.list:1: expected 'WEIGHT PATH [tta=VIEWS]', got one field");
    expect_error("# members\n\n1 a.weights b.weights\n",
                 "bad.list:3: 'b.weights': want tta=none, tta=flip or tta=crops");
    expect_error("1 a.weights tta=mirror\n", "bad.list:1: 'tta=mirror': want tta=none, tta=flip");
    expect_error("1 a.weights tta=\n", "bad.list:1: 'tta=': want tta=none");
    expect_error("1 a.weights tta=flip x\n",
                 "bad.list:1: expected 'WEIGHT PATH [tta=VIEWS]', got more than three fields");
    expect_error("0 a.weights\n", "bad.list:1: weight '0' is not a number > 0");
    expect_error("1 a.weights\n-2 b.weights\n", "bad.list:2: weight '-2' is not a number > 0");
    expect_error("abc a.weights\n", "bad.list:1: weight 'abc' is not a number > 0");
    expect_error("nan a.weights\n", "bad.list:1: weight 'nan' is not a number > 0");
    expect_error("1e999 a.weights\n", "bad.list:1: weight '1e999' is not a number > 0");
    expect_error("1x a.weights\n", "bad.list:1: weight '1x' is not a number > 0");
    expect_error("# c\n1 a.weights\n\n1 missing.weights\n", "bad.list:4: ");
    expect_error("# c\n1 a.weights\n\n1 missing.weights\n", "missing.weights: cannot open");
    expect_error("1 a.weights\n2 b.weights\n3 a.weights  # again\n",
                 "bad.list:3: 'a.weights' is already listed at line 1");
    expect_error("1 c.weights\n", "bad.list:1: ");
    expect_error("1 c.weights\n", "not 1x48x48 faces to 7 classes");
    expect_error("1 bad.list\n", "bad.list:1: ");   // a list is not a weights file
    expect_error("# nothing\n\n   \n", "bad.list: no members");
    expect_error("", "bad.list: no members");
    expect_error("tta flip\n1 a.weights\ntta none\n", "bad.list:3: tta is already given at line 1");
    expect_error("1 a.weights\ntta mirror\n", "bad.list:2: tta 'mirror': want none, flip or crops");
    expect_error("tta\n1 a.weights\n", "bad.list:1: expected 'WEIGHT PATH [tta=VIEWS]', got one field");
    expect_error("tta flip crops\n", "bad.list:1: 'crops': want tta=none");
    expect_error("tta flip\n", "bad.list: no members");
    // a weights file whose tensors are cut short is refused, naming it, at its line
    char *a = path_in("a.weights"), *t = path_in("trunc.weights"), err[EMO_ERRLEN];
    FILE *f = fopen(a, "rb"), *g = fopen(t, "wb");
    if (f && g) {
        char buf[300];
        size_t got = fread(buf, 1, sizeof buf, f);
        fwrite(buf, 1, got, g);
    }
    if (f) fclose(f);
    if (g) fclose(g);
    expect_error("2 a.weights\n1 trunc.weights\n", "bad.list:2: ");
    // a truncated weights file given directly names the file
    Ensemble *e = ensemble_load(t, err, sizeof err);
    CHECK(!e && strstr(err, "trunc.weights"), "truncated weights: '%s'", err);
    ensemble_free(e);
    e = ensemble_load("/nonexistent/x.list", err, sizeof err);
    CHECK(!e && strstr(err, "/nonexistent/x.list: cannot open"), "missing list: '%s'", err);
    free(a);
    free(t);
}

// The probabilities of one member on n faces: net_load (unfolded), eval forward, softmax.
static void member_probs(const char *name, const uint8_t *faces, int n, double *out) {
    char *p = path_in(name), err[EMO_ERRLEN];
    Net *net = net_load(p, err, sizeof err);
    CHECK(net != NULL, "%s", err);
    free(p);
    if (!net) return;
    real *x = malloc(sizeof(real) * (size_t)n * PX), *pr = malloc(sizeof(real) * (size_t)n * K);
    net_preprocess(net, faces, n, x);
    const real *logits = net_forward(net, x, n, 0, NULL);
    CHECK(logits != NULL, "forward");
    if (logits) softmax(logits, n, K, pr);
    for (int i = 0; i < n * K; i++) out[i] = logits ? pr[i] : 0;
    free(x);
    free(pr);
    net_free(net);
}

// Views built independently of ensemble_tta_view.
static void mirror(const uint8_t *src, uint8_t *dst) {
    for (int y = 0; y < F; y++)
        for (int x = 0; x < F; x++) dst[y * F + x] = src[y * F + F - 1 - x];
}

static void ten_views(const uint8_t *face, uint8_t *views) {   // (10, 48, 48)
    enum { P = 4, S = F + 2 * P };
    uint8_t pad[S * S];
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int sy = y - P, sx = x - P;
            sy = sy < 0 ? -sy : sy >= F ? 2 * F - 2 - sy : sy;
            sx = sx < 0 ? -sx : sx >= F ? 2 * F - 2 - sx : sx;
            pad[y * S + x] = face[sy * F + sx];
        }
    const int off[5][2] = {{P, P}, {0, 0}, {2 * P, 0}, {0, 2 * P}, {2 * P, 2 * P}};
    for (int c = 0; c < 5; c++) {
        uint8_t *v = views + (size_t)2 * c * PX;
        for (int y = 0; y < F; y++)
            for (int x = 0; x < F; x++) v[y * F + x] = pad[(y + off[c][1]) * S + x + off[c][0]];
        mirror(v, v + PX);
    }
}

static double max_diff(const float *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

static void test_predict(void) {
    write_file("ens.list",
               "# two members, relative paths\n"
               "3   a.weights   # the first\n"
               "\t1.5 b.weights\n");
    char *lp = path_in("ens.list"), err[EMO_ERRLEN];
    Ensemble *e = ensemble_load(lp, err, sizeof err);
    CHECK(e != NULL, "%s", err);
    free(lp);
    if (!e) return;
    CHECK(e->n == 2 && e->m[0].weight == 3 && e->m[1].weight == 1.5 && e->m[0].line == 2 && e->m[1].line == 3,
          "members parsed wrong");
    CHECK(e->m[0].net->folded, "members are folded for inference");

    enum { N = 150 };   // more than one internal batch, and with tta 2 many batches
    uint8_t *faces = malloc((size_t)N * PX);
    Rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < N; i++)   // smooth-ish random faces with some structure
        for (int y = 0; y < F; y++)
            for (int x = 0; x < F; x++)
                faces[(size_t)i * PX + y * F + x] =
                    (uint8_t)(rng_int(&r, 64) + 96 +
                              80 * sin(0.1 * (i + 1) * x + 0.07 * y) * (x < 24 ? 1 : 0.3));
    float *got = malloc(sizeof(float) * N * K);
    double *pa = malloc(sizeof(double) * N * K), *pb = malloc(sizeof(double) * N * K),
           *want = malloc(sizeof(double) * N * K);

    // no TTA
    member_probs("a.weights", faces, N, pa);
    member_probs("b.weights", faces, N, pb);
    for (int i = 0; i < N * K; i++) want[i] = (3 * pa[i] + 1.5 * pb[i]) / 4.5;
    CHECK(ensemble_predict(e, faces, N, got, ENS_TTA_NONE) == 0, "predict");
    CHECK(max_diff(got, want, N * K) < 2e-5, "ensemble != weighted member softmax: %g",
          max_diff(got, want, N * K));
    double sum = 0;
    for (int k = 0; k < K; k++) sum += got[k];
    CHECK(fabs(sum - 1) < 1e-5, "probabilities sum to %g", sum);

    // the members alone differ (so the average is a real test)
    double dab = 0;
    for (int i = 0; i < N * K; i++) dab = fmax(dab, fabs(pa[i] - pb[i]));
    CHECK(dab > 0.01, "members agree too well (%g) for the test to mean much", dab);

    // TTA 1: the face and its mirror
    uint8_t *views = malloc((size_t)N * 10 * PX);
    for (int i = 0; i < N; i++) mirror(faces + (size_t)i * PX, views + (size_t)i * PX);
    double *qa = malloc(sizeof(double) * N * K * 10), *qb = malloc(sizeof(double) * N * K * 10);
    member_probs("a.weights", views, N, qa);
    member_probs("b.weights", views, N, qb);
    for (int i = 0; i < N * K; i++) want[i] = (3 * (pa[i] + qa[i]) / 2 + 1.5 * (pb[i] + qb[i]) / 2) / 4.5;
    CHECK(ensemble_predict(e, faces, N, got, ENS_TTA_FLIP) == 0, "predict tta 1");
    CHECK(max_diff(got, want, N * K) < 2e-5, "tta 1 != average of face and mirror: %g",
          max_diff(got, want, N * K));

    // TTA 2: ten views
    enum { N2 = 30 };
    for (int i = 0; i < N2; i++) ten_views(faces + (size_t)i * PX, views + (size_t)i * 10 * PX);
    member_probs("a.weights", views, N2 * 10, qa);
    member_probs("b.weights", views, N2 * 10, qb);
    for (int i = 0; i < N2; i++)
        for (int k = 0; k < K; k++) {
            double sa = 0, sb = 0;
            for (int v = 0; v < 10; v++) sa += qa[(i * 10 + v) * K + k], sb += qb[(i * 10 + v) * K + k];
            want[i * K + k] = (3 * sa / 10 + 1.5 * sb / 10) / 4.5;
        }
    CHECK(ensemble_predict(e, faces, N2, got, ENS_TTA_CROPS) == 0, "predict tta 2");
    CHECK(max_diff(got, want, N2 * K) < 2e-5, "tta 2 != average of the ten views: %g",
          max_diff(got, want, N2 * K));
    // members with their own views: a sees ten, b only the face; --tta overrides both
    write_file("mixed.list", "tta flip\n3 a.weights tta=crops\n1.5 b.weights tta=none\n");
    char *mp = path_in("mixed.list");
    Ensemble *mx = ensemble_load(mp, err, sizeof err);
    free(mp);
    CHECK(mx != NULL, "%s", err);
    if (mx) {
        for (int i = 0; i < N2; i++)
            for (int k = 0; k < K; k++) {
                double sa = 0;
                for (int v = 0; v < 10; v++) sa += qa[(i * 10 + v) * K + k];
                want[i * K + k] = (3 * sa / 10 + 1.5 * pb[i * K + k]) / 4.5;
            }
        CHECK(ensemble_predict(mx, faces, N2, got, ENS_TTA_LIST) == 0, "predict as listed");
        CHECK(max_diff(got, want, N2 * K) < 2e-5, "ten views + one view != the members' own: %g",
              max_diff(got, want, N2 * K));
        for (int i = 0; i < N * K; i++) want[i] = (3 * pa[i] + 1.5 * pb[i]) / 4.5;
        CHECK(ensemble_predict(mx, faces, N, got, ENS_TTA_NONE) == 0 &&
                  max_diff(got, want, N * K) < 2e-5,
              "tta none for every member: %g", max_diff(got, want, N * K));
    }
    ensemble_free(mx);
    // and ensemble_tta_view makes those same views
    for (int v = 0; v < 10; v++) {
        uint8_t one[PX];
        ensemble_tta_view(faces, ENS_TTA_CROPS, v, one);
        CHECK(!memcmp(one, views + (size_t)v * PX, PX), "view %d differs", v);
    }
    CHECK(ensemble_predict(e, faces, N, got, 3) == -1, "tta 3 is refused");
    CHECK(ensemble_tta_views(0) == 1 && ensemble_tta_views(1) == 2 && ensemble_tta_views(2) == 10 &&
              ensemble_tta_views(7) == 0,
          "view counts");

    // a symmetric face: tta 1 == none; a constant face: tta 2 == none
    uint8_t sym[2 * PX];
    for (int y = 0; y < F; y++)
        for (int x = 0; x < F / 2; x++) {
            uint8_t v = (uint8_t)rng_int(&r, 256);
            sym[y * F + x] = sym[y * F + F - 1 - x] = v;
        }
    memset(sym + PX, 173, PX);
    float p0[2 * K], p1[2 * K], p2[2 * K];
    CHECK(ensemble_predict(e, sym, 2, p0, 0) == 0 && ensemble_predict(e, sym, 2, p1, 1) == 0 &&
              ensemble_predict(e, sym, 2, p2, 2) == 0,
          "predict");
    for (int k = 0; k < K; k++) {
        CHECK(fabs(p0[k] - p1[k]) < 1e-6, "symmetric face: class %d %g (none) vs %g (flip)", k, p0[k], p1[k]);
        CHECK(fabs(p0[K + k] - p2[K + k]) < 1e-6, "constant face: class %d %g (none) vs %g (10 views)", k,
              p0[K + k], p2[K + k]);
    }
    ensemble_free(e);

    // a single weights file is a one-member ensemble
    char *ap = path_in("a.weights");
    e = ensemble_load(ap, err, sizeof err);
    CHECK(e && e->n == 1 && e->m[0].weight == 1 && e->m[0].line == 0, "single weights file: %s", err);
    free(ap);
    if (e) {
        CHECK(ensemble_predict(e, faces, N, got, 0) == 0, "predict");
        for (int i = 0; i < N * K; i++) want[i] = pa[i];
        CHECK(max_diff(got, want, N * K) < 2e-5, "single member != its softmax: %g",
              max_diff(got, want, N * K));
    }
    ensemble_free(e);
    // an absolute path in a list
    char *abs = path_in("b.weights"), text[1200];
    snprintf(text, sizeof text, "1 %s\n", abs);
    free(abs);
    e = ensemble_parse(text, "inline", "/nonexistent", err, sizeof err);
    CHECK(e && e->n == 1, "absolute path: %s", err);
    ensemble_free(e);
    free(faces);
    free(got);
    free(pa);
    free(pb);
    free(want);
    free(views);
    free(qa);
    free(qb);
}

static void test_gradcam(void) {
    static const char *ARCH =
        "input c=1 h=48 w=48 mean=100 std=50\n"
        "conv out=5 k=3 stride=4 pad=1\n"
        "relu\n"
        "gap\n"
        "linear out=7\n";
    char err[EMO_ERRLEN];
    Net *net = net_parse(ARCH, "cam.arch", err, sizeof err);
    CHECK(net != NULL, "%s", err);
    if (!net) return;
    Rng r;
    rng_seed(&r, 9);
    net_init(net, &r);
    int layer = gradcam_default_layer(net);
    Shape s;
    net_layer_info(net, layer, &s);
    CHECK(layer == 1 && s.c == 5 && s.h == 12 && s.w == 12, "default layer %d (%dx%dx%d)", layer, s.c, s.h,
          s.w);
    enum { N = 3 };
    uint8_t faces[N * PX];
    for (int i = 0; i < N * PX; i++) faces[i] = (uint8_t)rng_int(&r, 256);
    float cam[N * 144], probs[N * K];
    int pred[N], target[N] = {0, 3, 6};
    const Tensor *w = NULL;
    for (int t = 0; t < net->ntensors; t++)
        if (net->tensors[t].ndim == 2) w = &net->tensors[t];   // the linear weight (7, 5)
    CHECK(w && w->dims[0] == 7 && w->dims[1] == 5, "linear weight");
    for (int pass = 0; pass < 2 && w; pass++) {
        const int *tg = pass ? target : NULL;
        CHECK(gradcam(net, layer, faces, N, tg, cam, pred, probs, err, sizeof err) == 0, "%s", err);
        const real *A = net_layer_output(net, layer), *W = net_tensor_data(net, w);
        double worst = 0, top = 0;
        for (int i = 0; i < N; i++) {
            int t = tg ? tg[i] : pred[i];
            for (int q = 0; q < 144; q++) {
                double v = 0;
                for (int c = 0; c < 5; c++) v += W[t * 5 + c] / 144.0 * A[(i * 5 + c) * 144 + q];
                v = v > 0 ? v : 0;
                worst = fmax(worst, fabs(v - cam[i * 144 + q]));
                top = fmax(top, v);
            }
        }
        CHECK(worst <= 1e-5 * fmax(top, 1e-3), "Grad-CAM != CAM by hand: %g (max %g)", worst, top);
        CHECK(top > 0, "the map is all zero");
    }
    CHECK(gradcam(net, 3, faces, N, NULL, cam, pred, probs, err, sizeof err) == -1,
          "the last layer is refused");
    CHECK(gradcam(net, 9, faces, N, NULL, cam, pred, probs, err, sizeof err) == -1, "no layer 9");
    net_fold_bn(net);
    CHECK(gradcam(net, layer, faces, N, NULL, cam, pred, probs, err, sizeof err) == -1 &&
              strstr(err, "unfolded"),
          "a folded net is refused: %s", err);
    net_free(net);
}

// Members that share one set of activation buffers and workspace (net_use_scratch), bigger
// and smaller than one another, each with a batch size of its own (its views), in turn and
// again: each member's classes equal its own unshared forward's.
static void test_shared_scratch(void) {
    write_file("deep.list", "1 a.weights tta=flip\n2 d.weights\n1 b.weights tta=none\n");
    char *lp = path_in("deep.list"), err[EMO_ERRLEN];
    Ensemble *e = ensemble_load(lp, err, sizeof err);
    CHECK(e != NULL, "%s", err);
    free(lp);
    if (!e) return;
    CHECK(e->m[1].net->scratch == &e->scratch && e->scratch.act_len == 0, "members share the scratch");
    enum { N = 5 };
    uint8_t faces[N * PX], mir[N * PX];
    Rng r;
    rng_seed(&r, 9);
    for (int i = 0; i < N * PX; i++) faces[i] = (uint8_t)rng_int(&r, 256);
    for (int i = 0; i < N; i++) mirror(faces + (size_t)i * PX, mir + (size_t)i * PX);
    double pa[N * K], qa[N * K], pd[N * K], pb[N * K], want[N * K];
    member_probs("a.weights", faces, N, pa);
    member_probs("a.weights", mir, N, qa);
    member_probs("d.weights", faces, N, pd);
    member_probs("b.weights", faces, N, pb);
    for (int i = 0; i < N * K; i++) want[i] = ((pa[i] + qa[i]) / 2 + 2 * pd[i] + pb[i]) / 4;
    for (int n = 1; n <= N; n += N - 1)   // one face, then five: the buffers grow
        for (int pass = 0; pass < 2; pass++) {
            float got[N * K];
            CHECK(ensemble_predict(e, faces, n, got, ENS_TTA_LIST) == 0, "predict");
            CHECK(max_diff(got, want, n * K) < 2e-5, "%d faces, pass %d: shared buffers change the "
                  "classes by %g", n, pass, max_diff(got, want, n * K));
        }
    CHECK(e->scratch.act_len >= (size_t)2 * 8 * PX, "scratch sized for the biggest layer");
    ensemble_free(e);
}

int main(void) {
    make_member(ARCH_A, "a.weights", 1);
    make_member(ARCH_B, "b.weights", 2);
    make_member(ARCH_C, "c.weights", 3);
    make_member(ARCH_D, "d.weights", 4);
    test_parse_errors();
    test_tta_line();
    test_predict();
    test_shared_scratch();
    test_gradcam();
    return test_result("test_ensemble");
}
