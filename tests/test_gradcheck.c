// test_gradcheck.c: every layer kind's backward against central finite differences, in double
// precision (the engine compiled with EMOCAM_F64).
//
// Each case is a tiny net built from architecture text. The loss is L = sum(y * r) for a fixed
// random r, so dL/dy = r is what backward gets. Every input coordinate and every parameter is
// perturbed by +-H and the whole training forward is re-run: batchnorm then sees the
// perturbation through its batch statistics, and the dropout Rng is reseeded identically
// before every forward, so the mask is fixed.
//
// Kinks: where a relu, max-pool or cbam is the first layer, x is drawn (and redrawn, up to a
// limit) so that every relu input is at least MARGIN from 0, the values of each max-pool plane
// are MARGIN apart, and inside CBAM the hidden ReLU inputs and the per-pixel channel maxima keep
// the same margin (recomputed from its parameters). Kinks deeper inside (a relu after a conv or
// inside a residual block) cannot be placed by hand: there a coordinate whose central
// differences with steps H and 2H disagree is skipped and counted (at most 1% may be; in
// practice none are). In the constructed cases the detector must skip nothing.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "testutil.h"

#ifndef EMOCAM_F64
#error "test_gradcheck is built against emocam_model_f64"
#endif

static const double H = 1e-6;       // the perturbation
static const double REL = 1e-6;     // allowed relative error
static const double FLOOR = 1e-2;   // |grad| below this is judged absolutely (REL * FLOOR)
static const double MARGIN = 1e-3;  // distance kept from ReLU / max kinks
static const uint64_t DROP_SEED = 77;

enum { IN_RAND, IN_AWAY0, IN_DISTINCT };

static double urand(Rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }

static Net *parse(const char *text, const char *name) {
    char err[EMO_ERRLEN];
    Net *net = net_parse(text, name, err, sizeof err);
    CHECK(net != NULL, "%s: %s", name, err);
    return net;
}

// Fill x (len values) in the given style.
static void draw_input(real *x, long len, int style, Rng *rng) {
    if (style == IN_DISTINCT) {   // a shuffled ramp: every pair at least 0.01 apart
        for (long i = 0; i < len; i++) x[i] = (real)((i - len / 2) * 0.01 + 0.003);
        for (long i = len - 1; i > 0; i--) {
            long j = rng_int(rng, (int)(i + 1));
            real t = x[i];
            x[i] = x[j];
            x[j] = t;
        }
        return;
    }
    for (long i = 0; i < len; i++) {
        double v = style == IN_AWAY0 ? urand(rng, 0.05, 1) : urand(rng, 0, 1);
        if (style == IN_AWAY0 && rng_uniform(rng) < 0.5) v = -v;
        if (style == IN_RAND) v = 2 * v - 1;
        x[i] = (real)v;
    }
}

static int cmp_real(const void *a, const void *b) {
    real x = *(const real *)a, y = *(const real *)b;
    return (x > y) - (x < y);
}

// Smallest gap between two values of the same plane (planes of len values).
static double plane_gap(const real *x, long planes, long len) {
    real *t = malloc((size_t)len * sizeof *t);
    double m = INFINITY;
    if (!t) return 0;
    for (long p = 0; p < planes; p++) {
        memcpy(t, x + p * len, (size_t)len * sizeof *t);
        qsort(t, (size_t)len, sizeof *t, cmp_real);
        for (long i = 1; i < len; i++) m = fmin(m, (double)(t[i] - t[i - 1]));
    }
    free(t);
    return m;
}

static const real *tensor_of(Net *net, const char *prefix, const char *suffix) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    const Tensor *t = net_tensor(net, name);
    CHECK(t != NULL, "no tensor %s", name);
    return t ? net_tensor_data(net, t) : NULL;
}

// CBAM's kinks, recomputed from its parameters for a cbam that is the first layer (x is its
// input, C x hw per sample): the max over each plane, the ReLU between fc1 and fc2, and the
// channel-wise max of x * att_c.
static double cbam_margin(Net *net, const char *prefix, const real *x, int n, int C, long hw) {
    char name[128];
    snprintf(name, sizeof name, "%s.fc1.w", prefix);
    const Tensor *t1 = net_tensor(net, name);
    CHECK(t1 != NULL, "no tensor %s", name);
    if (!t1) return 0;
    int hid = t1->dims[0];
    const real *w1 = tensor_of(net, prefix, "fc1.w"), *b1 = tensor_of(net, prefix, "fc1.b");
    const real *w2 = tensor_of(net, prefix, "fc2.w"), *b2 = tensor_of(net, prefix, "fc2.b");
    if (!w1 || !b1 || !w2 || !b2) return 0;
    double m = plane_gap(x, (long)n * C, hw);
    double *pool = malloc(sizeof(double) * 2 * C), *h = malloc(sizeof(double) * hid);
    double *att = malloc(sizeof(double) * C), *col = malloc(sizeof(double) * C);
    for (int i = 0; pool && h && att && col && i < n; i++) {
        for (int c = 0; c < C; c++) {
            const real *p = x + ((long)i * C + c) * hw;
            double s = 0, mx = p[0];
            for (long j = 0; j < hw; j++) {
                s += p[j];
                mx = fmax(mx, p[j]);
            }
            pool[c] = s / (double)hw;
            pool[C + c] = mx;
            att[c] = 0;
        }
        for (int which = 0; which < 2; which++) {
            const double *v = pool + which * C;
            for (int k = 0; k < hid; k++) {
                double a = b1[k];
                for (int c = 0; c < C; c++) a += w1[k * C + c] * v[c];
                m = fmin(m, fabs(a));
                h[k] = a > 0 ? a : 0;
            }
            for (int c = 0; c < C; c++) {
                double a = b2[c];
                for (int k = 0; k < hid; k++) a += w2[c * hid + k] * h[k];
                att[c] += a;
            }
        }
        for (int c = 0; c < C; c++) att[c] = 1 / (1 + exp(-att[c]));
        for (long j = 0; j < hw; j++) {
            for (int c = 0; c < C; c++) col[c] = x[((long)i * C + c) * hw + j] * att[c];
            for (int a = 0; a < C; a++)
                for (int b = a + 1; b < C; b++) m = fmin(m, fabs(col[a] - col[b]));
        }
    }
    if (!pool || !h || !att || !col) m = 0;
    free(pool);
    free(h);
    free(att);
    free(col);
    return m;
}

// How a case stays clear of kinks. The first four are constructions, checked on x: smooth
// layers only; a first-layer relu (|x| > MARGIN); a first-layer max-pool (values of a plane
// MARGIN apart); a first-layer cbam (cbam_margin). K_INNER: kinks deep inside a block, where
// the point cannot be placed by hand; there the finite-difference kink detector in gradcheck()
// skips the (rare) coordinates whose step crosses a kink, and reports them.
enum { K_NONE, K_RELU, K_POOL, K_CBAM, K_INNER };

static double kink_margin(Net *net, int kink, const real *x, int n) {
    long size = shape_size(net->in), hw = (long)net->in.h * net->in.w;
    double m = INFINITY;
    if (kink == K_RELU)
        for (long i = 0; i < n * size; i++) m = fmin(m, fabs((double)x[i]));
    if (kink == K_POOL) m = plane_gap(x, (long)n * net->in.c, hw);
    if (kink == K_CBAM) m = cbam_margin(net, "0.cbam", x, n, net->in.c, hw);
    return m;
}

static double loss_at(Net *net, const real *x, int n, const real *r, long ny) {
    Rng rng;
    rng_seed(&rng, DROP_SEED);
    const real *y = net_forward(net, x, n, 1, &rng);
    if (!y) return NAN;
    double L = 0;
    for (long i = 0; i < ny; i++) L += y[i] * r[i];
    return L;
}

typedef struct {
    double worst;
    char where[128];
    int bad;
} Err;

static void compare(Err *e, const char *what, long i, double analytic, double numeric) {
    double err = fabs(analytic - numeric) / fmax(fmax(fabs(analytic), fabs(numeric)), FLOOR);
    if (err > e->worst) {
        e->worst = err;
        snprintf(e->where, sizeof e->where, "%s[%ld]: backward %.12g, numeric %.12g", what, i,
                 analytic, numeric);
    }
    if (!(err <= REL)) e->bad++;
}

typedef struct {
    const char *name;
    const char *arch;
    int n;       // batch size
    int input;   // IN_*
    int kink;    // K_*
} Case;

// Central difference of the loss along coordinate *v, with step h.
static double central(Net *net, real *v, double h, const real *x, int n, const real *r,
                      long ny) {
    real keep = *v;
    *v = keep + (real)h;
    double lp = loss_at(net, x, n, r, ny);
    *v = keep - (real)h;
    double lm = loss_at(net, x, n, r, ny);
    *v = keep;
    return (lp - lm) / (2 * h);
}

// Compare backward's value g with the central difference along *v. A second difference with
// step 2H that disagrees with the first by more than REL means a kink lies within the step:
// the coordinate is skipped and counted (it cannot hide a backward bug: only forwards are
// compared there).
static void check_coord(Err *e, int *skipped, const char *what, long i, double g, Net *net,
                        real *v, const real *x, int n, const real *r, long ny) {
    double c1 = central(net, v, H, x, n, r, ny), c2 = central(net, v, 2 * H, x, n, r, ny);
    if (fabs(c1 - c2) > REL * fmax(fmax(fabs(c1), fabs(c2)), FLOOR)) {
        ++*skipped;
        return;
    }
    compare(e, what, i, g, c1);
}

static void gradcheck(const Case *cs) {
    Net *net = parse(cs->arch, cs->name);
    if (!net) return;
    Rng rng;
    rng_seed(&rng, 1234);
    net_init(net, &rng);
    // batchnorm at gamma 1, beta 0 would hide mistakes in their use: move them
    for (int t = 0; t < net->ntensors; t++) {
        const Tensor *tt = &net->tensors[t];
        size_t len = strlen(tt->name);
        real *d = net_tensor_data(net, tt);
        if (len > 6 && strcmp(tt->name + len - 6, ".gamma") == 0)
            for (size_t i = 0; i < tt->count; i++) d[i] = (real)urand(&rng, 0.5, 1.5);
        if (len > 5 && strcmp(tt->name + len - 5, ".beta") == 0)
            for (size_t i = 0; i < tt->count; i++) d[i] = (real)urand(&rng, -0.5, 0.5);
    }
    int n = cs->n;
    long nx = n * shape_size(net->in), ny = n * shape_size(net->out);
    real *x = malloc((size_t)nx * sizeof *x), *dx = malloc((size_t)nx * sizeof *dx);
    real *r = malloc((size_t)ny * sizeof *r);
    if (!x || !dx || !r) {
        CHECK(0, "%s: out of memory", cs->name);
        goto done;
    }
    for (long i = 0; i < ny; i++) r[i] = (real)urand(&rng, -1, 1);

    // draw x until the point is clear of the kinks that can be placed by hand
    double margin = 0;
    int tries = 0;
    while (tries++ < 200) {
        draw_input(x, nx, cs->input, &rng);
        margin = kink_margin(net, cs->kink, x, n);
        if (margin > MARGIN) break;
    }
    CHECK(margin > MARGIN, "%s: no input clear of the kinks in 200 draws (margin %g)", cs->name,
          margin);

    // backward's gradients
    net_zero_grad(net);
    double L0 = loss_at(net, x, n, r, ny);
    CHECK(isfinite(L0), "%s: forward failed", cs->name);
    Rng drop;
    rng_seed(&drop, DROP_SEED);
    for (long i = 0; i < nx; i++) dx[i] = NAN;
    net_backward(net, x, r, dx, n, &drop);
    real *g = malloc(net->nparams * sizeof *g);   // a copy: loss_at must not disturb them
    if (!g) {
        CHECK(0, "%s: out of memory", cs->name);
        goto done;
    }
    memcpy(g, net->grads, net->nparams * sizeof *g);

    // The finite differences run on one thread: thousands of small forwards, and a forward's
    // chunks are independent of the thread count. Backward above ran on all of them (the
    // convolution's per-thread gradient accumulators).
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    Err e = {0};
    int skipped = 0;
    for (long i = 0; i < nx; i++)
        check_coord(&e, &skipped, "dx", i, dx[i], net, &x[i], x, n, r, ny);
    long nchecked = nx;
    for (int t = 0; t < net->ntensors; t++) {
        const Tensor *tt = &net->tensors[t];
        if (tt->is_buffer) continue;
        for (size_t i = 0; i < tt->count; i++)
            check_coord(&e, &skipped, tt->name, (long)i, g[tt->off + i], net,
                        net->params + tt->off + i, x, n, r, ny);
        nchecked += (long)tt->count;
    }
    omp_set_num_threads(threads);
    free(g);
    CHECK(e.bad == 0, "%s: %d of %ld gradients off; worst rel err %.3g at %s", cs->name, e.bad,
          nchecked, e.worst, e.where);
    if (cs->kink == K_INNER)
        CHECK(skipped * 100 <= nchecked, "%s: %d of %ld coordinates skipped at kinks", cs->name,
              skipped, nchecked);
    else   // the point was placed away from every kink: the detector must find none
        CHECK(skipped == 0, "%s: %d coordinates look like kinks, none expected", cs->name,
              skipped);
    printf("%-26s n=%d %4ld gradients, %d skipped at kinks, worst rel err %.2e\n", cs->name, n,
           nchecked, skipped, e.worst);
done:
    free(x);
    free(dx);
    free(r);
    net_free(net);
}

static const Case CASES[] = {
    // convolution
    {"conv plain", "input c=3 h=7 w=7\nconv out=4 k=3", 2, IN_RAND, K_NONE},
    {"conv plain n=1", "input c=3 h=7 w=7\nconv out=4 k=3", 1, IN_RAND, K_NONE},
    {"conv stride2 pad1", "input c=3 h=7 w=7\nconv out=4 k=3 stride=2 pad=1", 2, IN_RAND, K_NONE},
    {"conv stride2 pad1 n=1", "input c=3 h=7 w=7\nconv out=4 k=3 stride=2 pad=1", 1, IN_RAND,
     K_NONE},
    {"conv k5 pad2", "input c=2 h=6 w=5\nconv out=3 k=5 pad=2", 2, IN_RAND, K_NONE},
    {"conv groups=2", "input c=4 h=6 w=6\nconv out=6 k=3 pad=1 groups=2", 2, IN_RAND, K_NONE},
    {"conv groups=2 n=1", "input c=4 h=6 w=6\nconv out=6 k=3 pad=1 groups=2", 1, IN_RAND, K_NONE},
    {"conv depthwise", "input c=4 h=6 w=6\nconv out=4 k=3 pad=1 groups=4", 2, IN_RAND, K_NONE},
    {"conv depthwise x2", "input c=3 h=5 w=6\nconv out=6 k=3 stride=2 groups=3", 2, IN_RAND,
     K_NONE},
    {"conv bias=0", "input c=3 h=6 w=6\nconv out=4 k=3 pad=1 bias=0", 2, IN_RAND, K_NONE},
    {"conv 1x1", "input c=5 h=4 w=4\nconv out=3 k=1", 2, IN_RAND, K_NONE},
    {"conv 1x1 stride2", "input c=3 h=5 w=7\nconv out=2 k=1 stride=2", 2, IN_RAND, K_NONE},
    {"conv non-square", "input c=2 h=5 w=9\nconv out=3 k=3 stride=2 pad=1", 3, IN_RAND, K_NONE},
    // batches of several chunks (the engine lowers ceil(256 / (oh*ow)) images at a time)
    {"conv 1-image chunks", "input c=1 h=16 w=16\nconv out=2 k=3 pad=1", 2, IN_RAND, K_NONE},
    {"conv chunks of 3 and 1", "input c=1 h=10 w=10\nconv out=3 k=3 pad=1", 4, IN_RAND, K_NONE},
    // batchnorm, training mode (batch statistics)
    {"bn image", "input c=3 h=4 w=4\nbn", 3, IN_RAND, K_NONE},
    {"bn image n=1", "input c=3 h=4 w=5\nbn", 1, IN_RAND, K_NONE},
    {"bn flat", "input c=5 h=1 w=1\nbn", 4, IN_RAND, K_NONE},
    {"conv+bn", "input c=2 h=5 w=5\nconv out=3 k=3 pad=1\nbn eps=1e-3", 2, IN_RAND, K_NONE},
    {"linear+bn flat", "input c=6 h=1 w=1\nlinear out=4\nbn momentum=0.5", 5, IN_RAND, K_NONE},
    // pointwise and pooling
    {"relu", "input c=2 h=4 w=4\nrelu", 2, IN_AWAY0, K_RELU},
    {"maxpool k2", "input c=2 h=6 w=6\nmaxpool k=2", 2, IN_DISTINCT, K_POOL},
    {"maxpool k2 odd size", "input c=2 h=7 w=5\nmaxpool k=2", 2, IN_DISTINCT, K_POOL},
    {"maxpool k3 s2 p1", "input c=2 h=7 w=7\nmaxpool k=3 stride=2 pad=1", 2, IN_DISTINCT, K_POOL},
    {"avgpool k2", "input c=2 h=6 w=6\navgpool k=2", 2, IN_RAND, K_NONE},
    {"avgpool k3 s2", "input c=2 h=7 w=8\navgpool k=3 stride=2", 2, IN_RAND, K_NONE},
    {"gap", "input c=3 h=4 w=5\ngap", 2, IN_RAND, K_NONE},
    {"flatten", "input c=2 h=3 w=3\nflatten", 2, IN_RAND, K_NONE},
    {"flatten+linear", "input c=2 h=3 w=3\nflatten\nlinear out=4", 2, IN_RAND, K_NONE},
    {"linear", "input c=6 h=1 w=1\nlinear out=4", 3, IN_RAND, K_NONE},
    {"linear bias=0", "input c=6 h=1 w=1\nlinear out=4 bias=0", 3, IN_RAND, K_NONE},
    {"gap+linear", "input c=3 h=4 w=4\ngap\nlinear out=2", 2, IN_RAND, K_NONE},
    // dropout (mask fixed by reseeding)
    {"dropout", "input c=3 h=4 w=4\ndropout p=0.3", 2, IN_RAND, K_NONE},
    {"dropout2d", "input c=4 h=3 w=3\ndropout2d p=0.5", 3, IN_RAND, K_NONE},
    {"linear+dropout", "input c=6 h=1 w=1\nlinear out=8\ndropout p=0.5", 3, IN_RAND, K_NONE},
    // a relu after another layer (the engine may fuse it into that layer)
    {"conv+relu", "input c=2 h=5 w=5\nconv out=3 k=3 pad=1\nrelu", 2, IN_RAND, K_INNER},
    {"conv+bn+relu", "input c=2 h=5 w=5\nconv out=3 k=3 pad=1\nbn\nrelu", 2, IN_RAND, K_INNER},
    {"linear+relu+linear", "input c=5 h=1 w=1\nlinear out=6\nrelu\nlinear out=3", 3, IN_RAND,
     K_INNER},
    {"linear+bn+relu", "input c=5 h=1 w=1\nlinear out=6\nbn\nrelu", 4, IN_RAND, K_INNER},
    {"conv+relu+maxpool", "input c=2 h=6 w=6\nconv out=3 k=3 pad=1\nrelu\nmaxpool k=2", 2,
     IN_RAND, K_INNER},
    // a 2x2 max-pool after a batchnorm (and its relu): done by the batchnorm in training
    {"conv+bn+relu+maxpool", "input c=2 h=6 w=6\nconv out=3 k=3 pad=1\nbn\nrelu\nmaxpool k=2",
     2, IN_RAND, K_INNER},
    {"conv+bn+maxpool", "input c=2 h=4 w=6\nconv out=3 k=3 pad=1\nbn\nmaxpool k=2", 3, IN_RAND,
     K_INNER},
    {"relu+relu", "input c=2 h=3 w=3\nrelu\nrelu", 2, IN_AWAY0, K_RELU},
    // blocks
    {"residual identity",
     "input c=3 h=5 w=5\nresidual\n  conv out=3 k=3 pad=1\n  bn\n  relu\n  conv out=3 k=3 "
     "pad=1\nend",
     2, IN_RAND, K_INNER},
    {"residual projection+relu",
     "input c=3 h=6 w=6\nresidual\n  conv out=4 k=3 stride=2 pad=1 bias=0\n  bn\n  relu\n"
     "  conv out=4 k=3 pad=1 bias=0\n  bn\nshortcut\n  conv out=4 k=1 stride=2 bias=0\n  bn\n"
     "end\nrelu",
     2, IN_RAND, K_INNER},
    {"residual nested",
     "input c=2 h=5 w=5\nresidual\n  conv out=2 k=3 pad=1\n  residual\n    conv out=2 k=3 "
     "pad=1\n  shortcut\n    conv out=2 k=1\n  end\n  relu\nend\nrelu",
     2, IN_RAND, K_INNER},
    {"residual then head",
     "input c=2 h=4 w=4\nresidual\n  conv out=2 k=3 pad=1\nend\ngap\nlinear out=3", 2, IN_RAND,
     K_NONE},
    {"cbam", "input c=4 h=5 w=5\ncbam r=2 k=3", 2, IN_DISTINCT, K_CBAM},
    {"cbam n=1 k=5", "input c=6 h=4 w=6\ncbam r=3 k=5", 1, IN_DISTINCT, K_CBAM},
};

// Either loss, by what ctx holds: softmax_xent with labels, or softmax_xent_probs with targets.
typedef struct {
    const int *labels;
    const real *targets;
    const real *cw;
    real eps;
} XentCtx;

static double xent_of(const XentCtx *c, const real *z, int n, int k) {
    return c->targets ? softmax_xent_probs(z, c->targets, n, k, c->cw, NULL, NULL)
                      : softmax_xent(z, c->labels, n, k, c->cw, c->eps, NULL, NULL);
}

// dLoss/dlogits g (n, k) against central differences of the loss.
static void check_dlogits(const XentCtx *c, real *z, const real *g, int n, int k, const char *what) {
    Err e = {0};
    for (int i = 0; i < n * k; i++) {
        real keep = z[i];
        z[i] = keep + (real)H;
        double lp = xent_of(c, z, n, k);
        z[i] = keep - (real)H;
        double lm = xent_of(c, z, n, k);
        z[i] = keep;
        compare(&e, "dlogits", i, g[i], (lp - lm) / (2 * H));
    }
    CHECK(e.bad == 0, "%s: %d of %d gradients off; worst %.3g at %s", what, e.bad, n * k,
          e.worst, e.where);
    printf("%-28s        %5d gradients                     worst rel err %.2e\n", what, n * k,
           e.worst);
}

// softmax_xent: dLoss/dlogits against central differences of the returned loss.
static void check_xent(const real *cw, real eps, const char *what) {
    enum { N = 4, K = 5 };
    Rng rng;
    rng_seed(&rng, 99);
    real z[N * K], g[N * K], p[N * K];
    int labels[N] = {0, 3, 4, 3};
    for (int i = 0; i < N * K; i++) z[i] = (real)urand(&rng, -3, 3);
    double L = softmax_xent(z, labels, N, K, cw, eps, p, g);
    CHECK(isfinite(L) && L > 0, "%s: loss %g", what, L);
    XentCtx c = {labels, NULL, cw, eps};
    check_dlogits(&c, z, g, N, K, what);
    // probabilities: rows sum to 1
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < K; j++) s += p[i * K + j];
        CHECK(fabs(s - 1) < 1e-12, "%s: row %d of probs sums to %.15g", what, i, s);
    }
    // the loss itself, written out from PyTorch's definition
    double num = 0, den = 0;
    for (int i = 0; i < N; i++) {
        double mx = z[i * K], s = 0;
        for (int j = 1; j < K; j++) mx = fmax(mx, z[i * K + j]);
        for (int j = 0; j < K; j++) s += exp(z[i * K + j] - mx);
        double lse = mx + log(s);
        int t = labels[i];
        double wt = cw ? cw[t] : 1, smooth = 0;
        for (int j = 0; j < K; j++) smooth += (cw ? cw[j] : 1) * (lse - z[i * K + j]);
        num += (1 - eps) * wt * (lse - z[i * K + t]) + eps / K * smooth;
        den += wt;
    }
    CHECK(fabs(L - num / den) < 1e-12 * fabs(L), "%s: loss %.15g, expected %.15g", what, L,
          num / den);
}

// softmax_xent_probs: dLoss/dlogits against central differences, and, with every target the
// smoothed one-hot of a label and no class weights, the same loss and gradient as softmax_xent.
static void check_xent_probs(const real *cw, const char *what) {
    enum { N = 4, K = 5 };
    Rng rng;
    rng_seed(&rng, 77);
    real z[N * K], q[N * K], g[N * K], p[N * K];
    for (int i = 0; i < N * K; i++) z[i] = (real)urand(&rng, -3, 3);
    for (int i = 0; i < N; i++) {   // a random distribution per row
        double s = 0;
        for (int j = 0; j < K; j++) s += q[i * K + j] = (real)urand(&rng, 0, 1);
        for (int j = 0; j < K; j++) q[i * K + j] /= (real)s;
    }
    double L = softmax_xent_probs(z, q, N, K, cw, p, g);
    CHECK(isfinite(L) && L > 0, "%s: loss %g", what, L);
    XentCtx c = {NULL, q, cw, 0};
    check_dlogits(&c, z, g, N, K, what);
    if (cw) return;
    int labels[N] = {1, 0, 4, 1};
    real eps = (real)0.1, g1[N * K];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < K; j++) q[i * K + j] = (j == labels[i]) * (1 - eps) + eps / K;
    double a = softmax_xent_probs(z, q, N, K, NULL, NULL, g);
    double b = softmax_xent(z, labels, N, K, NULL, eps, NULL, g1);
    CHECK(fabs(a - b) < 1e-12 * fabs(b), "%s: one-hot targets: loss %.15g, softmax_xent %.15g", what, a, b);
    double worst = 0;
    for (int i = 0; i < N * K; i++) worst = fmax(worst, fabs(g[i] - g1[i]));
    CHECK(worst < 1e-12, "%s: one-hot targets: gradients differ from softmax_xent's by %.3g", what, worst);
}

// Dropout's mask: every unit (or channel, for dropout2d) is 0 or x/(1-p); none otherwise.
static void check_dropout_scaling(const char *arch, double p, int channels) {
    Net *net = parse(arch, "dropout-scaling");
    if (!net) return;
    int n = 4;
    long size = shape_size(net->in), nx = n * size, hw = (long)net->in.h * net->in.w;
    real *x = malloc((size_t)nx * sizeof *x);
    if (!x) {
        net_free(net);
        return;
    }
    Rng rng;
    rng_seed(&rng, 5);
    draw_input(x, nx, IN_AWAY0, &rng);
    const real *y = net_forward(net, x, n, 1, &rng);
    CHECK(y != NULL, "dropout forward failed");
    long zeros = 0, kept = 0, bad = 0;
    real keep = (real)(1 / (1 - (real)p));
    for (long i = 0; y && i < nx; i++) {
        if (y[i] == 0)
            zeros++;
        else if (fabs(y[i] - x[i] * keep) <= 1e-15 * fabs(x[i] * keep))
            kept++;
        else
            bad++;
        if (channels && i % hw) {   // a whole channel shares one draw
            int same = (y[i] == 0) == (y[i - 1] == 0);
            CHECK(same, "dropout2d: channel %ld is partly dropped", i / hw);
        }
    }
    CHECK(bad == 0, "%s: %ld outputs are neither 0 nor x/(1-p)", arch, bad);
    double frac = (double)zeros / (double)nx;
    CHECK(zeros > 0 && kept > 0 && fabs(frac - p) < (channels ? 0.3 : 0.1),
          "%s: dropped %ld of %ld (p=%g)", arch, zeros, nx, p);
    // outside training, and with dropout switched off, it is the identity
    y = net_forward(net, x, n, 0, &rng);
    CHECK(y && memcmp(y, x, (size_t)nx * sizeof *x) == 0, "%s: eval forward is not identity",
          arch);
    net->dropout = 0;
    y = net_forward(net, x, n, 1, &rng);
    CHECK(y && memcmp(y, x, (size_t)nx * sizeof *x) == 0,
          "%s: train forward with net->dropout=0 is not identity", arch);
    free(x);
    net_free(net);
}

// Same seed: bit-identical init and training forward. Different seeds: different.
static void check_seeds(void) {
    const char *arch =
        "input c=2 h=8 w=8\nconv out=4 k=3 pad=1\nbn\nrelu\nmaxpool k=2\ncbam r=2 k=3\n"
        "dropout2d p=0.2\nflatten\nlinear out=6\ndropout p=0.5\nlinear out=3";
    Net *a = parse(arch, "seed-a"), *b = parse(arch, "seed-b");
    if (!a || !b) {
        net_free(a);
        net_free(b);
        return;
    }
    Rng ra, rb;
    rng_seed(&ra, 2024);
    rng_seed(&rb, 2024);
    net_init(a, &ra);
    net_init(b, &rb);
    size_t bytes = a->nparams * sizeof(real);
    CHECK(a->nparams == b->nparams && memcmp(a->params, b->params, bytes) == 0,
          "same seed, different init");
    CHECK(memcmp(&ra, &rb, sizeof ra) == 0, "same seed, init consumed different draws");
    int n = 3;
    long nx = n * shape_size(a->in), ny = n * shape_size(a->out);
    real *x = malloc((size_t)nx * sizeof *x), *ya = malloc((size_t)ny * sizeof *ya);
    if (!x || !ya) goto done;
    Rng rx;
    rng_seed(&rx, 8);
    draw_input(x, nx, IN_RAND, &rx);
    Rng da, db;
    rng_seed(&da, 31);
    rng_seed(&db, 31);
    const real *out = net_forward(a, x, n, 1, &da);
    CHECK(out != NULL, "forward failed");
    if (out) memcpy(ya, out, (size_t)ny * sizeof *ya);
    out = net_forward(b, x, n, 1, &db);
    CHECK(out && memcmp(out, ya, (size_t)ny * sizeof *ya) == 0,
          "same seeds, different training forward");
    CHECK(memcmp(a->bufs, b->bufs, a->nbufs * sizeof(real)) == 0,
          "same seeds, different running statistics");
    // another dropout seed: another output
    rng_seed(&db, 32);
    out = net_forward(b, x, n, 1, &db);
    CHECK(out && memcmp(out, ya, (size_t)ny * sizeof *ya) != 0,
          "different dropout seeds, same training forward");
    // another init seed: other weights, in every parameter tensor that init draws
    rng_seed(&rb, 2025);
    net_init(b, &rb);
    for (int t = 0; t < a->ntensors; t++) {
        const Tensor *tt = &a->tensors[t];
        size_t len = strlen(tt->name);
        if (tt->is_buffer || (len > 6 && strcmp(tt->name + len - 6, ".gamma") == 0) ||
            (len > 5 && strcmp(tt->name + len - 5, ".beta") == 0))
            continue;
        CHECK(memcmp(a->params + tt->off, b->params + tt->off, tt->count * sizeof(real)) != 0,
              "different seeds, same init of %s", tt->name);
    }
    // init is PyTorch's: uniform within +-1/sqrt(fan_in)
    const Tensor *w = net_tensor(a, "0.conv.w");
    CHECK(w != NULL, "no 0.conv.w");
    if (w) {
        double bound = 1 / sqrt(2.0 * 9), mx = 0;
        for (size_t i = 0; i < w->count; i++) mx = fmax(mx, fabs(a->params[w->off + i]));
        CHECK(mx <= bound && mx > 0.8 * bound, "0.conv.w: max |w| %g, bound %g", mx, bound);
    }
done:
    free(x);
    free(ya);
    net_free(a);
    net_free(b);
}

int main(void) {
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) gradcheck(&CASES[i]);

    real cw[5] = {1.0, 2.5, 0.5, 1.5, 3.0};
    check_xent(NULL, 0, "softmax_xent");
    check_xent(NULL, (real)0.1, "softmax_xent smoothing");
    check_xent(cw, 0, "softmax_xent weights");
    check_xent(cw, (real)0.2, "softmax_xent weights+smooth");
    check_xent_probs(NULL, "softmax_xent_probs");
    check_xent_probs(cw, "softmax_xent_probs weights");

    check_dropout_scaling("input c=4 h=5 w=5\ndropout p=0.3", 0.3, 0);
    check_dropout_scaling("input c=8 h=3 w=3\ndropout2d p=0.5", 0.5, 1);
    check_seeds();
    return test_result("test_gradcheck");
}
