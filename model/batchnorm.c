// batchnorm.c: batch normalisation over channels, for images (N,C,H,W) and vectors (N,C,1,1)
// alike, i.e. PyTorch's BatchNorm2d and BatchNorm1d.
//
//   bn [eps=1e-5] [momentum=0.1]
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct {
    Layer base;
    real eps, momentum;
    real *gamma, *dgamma, *beta, *dbeta;   // (C)
    real *rmean, *rvar;                    // (C) running statistics (buffers)
    real *mean, *invstd;                   // (C) statistics of the last forward; owned
} BatchNorm;

// Statistics are summed in float inside each plane (vectorised: an OpenMP simd reduction
// may reorder) and in double across planes.
// Vectors (N, C): loop over samples outside, channels inside, so that the inner loops run
// along contiguous memory.
static void bn1d_forward(BatchNorm *bn, const real *x, real *y, int n, int train) {
    int C = bn->base.in.c;
    real *mu = bn->mean, *is = bn->invstd;
    if (train) {
        for (int ch = 0; ch < C; ch++) mu[ch] = is[ch] = 0;
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < C; ch++) mu[ch] += x[(size_t)i * C + ch];
        for (int ch = 0; ch < C; ch++) mu[ch] /= (real)n;
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < C; ch++) {
                real d = x[(size_t)i * C + ch] - mu[ch];
                is[ch] += d * d;   // the sum of squares, for now
            }
        for (int ch = 0; ch < C; ch++) {
            double ss = is[ch], var = ss / n, unbiased = n > 1 ? ss / (n - 1) : var;
            bn->rmean[ch] = (real)((1 - bn->momentum) * bn->rmean[ch] + bn->momentum * mu[ch]);
            bn->rvar[ch] = (real)((1 - bn->momentum) * bn->rvar[ch] + bn->momentum * unbiased);
            is[ch] = (real)(1.0 / sqrt(var + bn->eps));
        }
    } else {
        for (int ch = 0; ch < C; ch++) {
            mu[ch] = bn->rmean[ch];
            is[ch] = (real)(1.0 / sqrt((double)bn->rvar[ch] + bn->eps));
        }
    }
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < C; ch++) {
            real v = (x[(size_t)i * C + ch] - mu[ch]) * is[ch] * bn->gamma[ch] + bn->beta[ch];
            y[(size_t)i * C + ch] = bn->base.relu && v < 0 ? 0 : v;
        }
}

static void bn1d_backward(BatchNorm *bn, const real *x, const real *y, const real *dy, real *dx,
                          int n, int train, real *ws) {
    int C = bn->base.in.c, relu = bn->base.relu;
    real *sdy = ws, *sdyx = ws + C;   // (C) each
    for (int ch = 0; ch < C; ch++) sdy[ch] = sdyx[ch] = 0;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < C; ch++) {
            size_t o = (size_t)i * C + ch;
            real g = relu && y[o] <= 0 ? 0 : dy[o];
            sdy[ch] += g;
            sdyx[ch] += g * (x[o] - bn->mean[ch]) * bn->invstd[ch];
        }
    for (int ch = 0; ch < C; ch++) {
        bn->dgamma[ch] += sdyx[ch];
        bn->dbeta[ch] += sdy[ch];
    }
    if (!dx) return;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < C; ch++) {
            size_t o = (size_t)i * C + ch;
            real g = relu && y[o] <= 0 ? 0 : dy[o], k = bn->gamma[ch] * bn->invstd[ch];
            real xh = (x[o] - bn->mean[ch]) * bn->invstd[ch];
            dx[o] = train ? k * (g - sdy[ch] / n - xh * sdyx[ch] / n) : k * g;
        }
}

static void bn_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    BatchNorm *bn = (BatchNorm *)l;
    int C = l->in.c, relu = l->relu;
    size_t hw = (size_t)l->in.h * l->in.w, m = (size_t)n * hw;
    int train = c->train;
    if (hw == 1) {
        bn1d_forward(bn, x, y, n, train);
        return;
    }
#pragma omp parallel for schedule(static) if (m * C > PAR_MIN)
    for (int ch = 0; ch < C; ch++) {
        real mean, invstd;
        if (train) {
            // one pass: per-plane sums around a shift (the first value), which keeps
            // E[x^2] - E[x]^2 from cancelling when the mean is large against the spread
            real shift = x[(size_t)ch * hw];
            double s1 = 0, s2 = 0;
            for (int i = 0; i < n; i++) {
                const real *p = x + ((size_t)i * C + ch) * hw;
                real a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
                for (size_t j = 0; j < hw; j++) {
                    real d = p[j] - shift;
                    a += d;
                    b += d * d;
                }
                s1 += a;
                s2 += b;
            }
            double md = s1 / (double)m, mu = shift + md;
            double ss = s2 - s1 * md;   // sum of squared deviations from the mean
            if (ss < 0) ss = 0;
            real muf = (real)mu;
            double var = ss / (double)m;
            mean = muf;
            invstd = (real)(1.0 / sqrt(var + bn->eps));
            double unbiased = m > 1 ? ss / (double)(m - 1) : var;
            bn->rmean[ch] = (real)((1 - bn->momentum) * bn->rmean[ch] + bn->momentum * mu);
            bn->rvar[ch] = (real)((1 - bn->momentum) * bn->rvar[ch] + bn->momentum * unbiased);
        } else {
            mean = bn->rmean[ch];
            invstd = (real)(1.0 / sqrt((double)bn->rvar[ch] + bn->eps));
        }
        bn->mean[ch] = mean;
        bn->invstd[ch] = invstd;
        real sc = invstd * bn->gamma[ch], sh = bn->beta[ch] - mean * sc;
        for (int i = 0; i < n; i++) {
            const real *p = x + ((size_t)i * C + ch) * hw;
            real *q = y + ((size_t)i * C + ch) * hw;
            if (relu)
                for (size_t j = 0; j < hw; j++) {
                    real v = p[j] * sc + sh;
                    q[j] = v > 0 ? v : 0;
                }
            else
                for (size_t j = 0; j < hw; j++) q[j] = p[j] * sc + sh;
        }
    }
}

static void bn_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx, int n,
                        Ctx *c) {
    BatchNorm *bn = (BatchNorm *)l;
    int C = l->in.c, relu = l->relu;
    size_t hw = (size_t)l->in.h * l->in.w, m = (size_t)n * hw;
    int train = c->train;
    if (hw == 1) {
        bn1d_backward(bn, x, y, dy, dx, n, train, c->ws);
        return;
    }
#pragma omp parallel for schedule(static) if (m * C > PAR_MIN)
    for (int ch = 0; ch < C; ch++) {
        real mean = bn->mean[ch], invstd = bn->invstd[ch];
        // a fused ReLU passes gradient only where the output x*sc + sh is positive; that is
        // recomputed from x, the same expression as forward, to save reading y
        real sc = invstd * bn->gamma[ch], sh = bn->beta[ch] - mean * sc;
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++) {
            size_t o = ((size_t)i * C + ch) * hw;
            const real *p = x + o, *g = dy + o;
            real a = 0, b = 0;
            if (relu) {
#pragma omp simd reduction(+ : a, b)
                for (size_t j = 0; j < hw; j++) {
                    real gj = p[j] * sc + sh > 0 ? g[j] : 0;
                    a += gj;
                    b += gj * (p[j] - mean);
                }
            } else {
#pragma omp simd reduction(+ : a, b)
                for (size_t j = 0; j < hw; j++) {
                    a += g[j];
                    b += g[j] * (p[j] - mean);
                }
            }
            sdy += a;
            sdyx += b;
        }
        sdyx *= invstd;
        bn->dgamma[ch] += (real)sdyx;
        bn->dbeta[ch] += (real)sdy;
        if (!dx) continue;
        real k = bn->gamma[ch] * invstd;
        // training: dx = k (dy - mean(dy) - xhat mean(dy xhat)); eval: dx = k dy
        real a = train ? (real)(sdy / (double)m) : 0;
        real b = train ? (real)(sdyx / (double)m) * invstd : 0;
        for (int i = 0; i < n; i++) {
            size_t o = ((size_t)i * C + ch) * hw;
            const real *p = x + o, *g = dy + o;
            real *d = dx + o;
            if (relu)
                for (size_t j = 0; j < hw; j++)
                    d[j] = k * ((p[j] * sc + sh > 0 ? g[j] : 0) - a - (p[j] - mean) * b);
            else
                for (size_t j = 0; j < hw; j++) d[j] = k * (g[j] - a - (p[j] - mean) * b);
        }
    }
}

static long bn_reserve(Layer *l, int n, int with_grads) {
    (void)n;
    (void)with_grads;
    return l->in.h * l->in.w == 1 ? 2L * l->in.c : 0;
}

static void bn_init(Layer *l, Rng *rng) {
    (void)rng;
    BatchNorm *bn = (BatchNorm *)l;
    for (int ch = 0; ch < l->in.c; ch++) {
        bn->gamma[ch] = 1;
        bn->beta[ch] = 0;
        bn->rmean[ch] = 0;
        bn->rvar[ch] = 1;
    }
}

static void bn_destroy(Layer *l) {
    BatchNorm *bn = (BatchNorm *)l;
    free(bn->mean);
    free(bn->invstd);
}

static double bn_flops(const Layer *l) { return 2.0 * shape_size(l->in); }

static const LayerOps BN_OPS = {
    .kind = "bn",
    .forward = bn_forward,
    .backward = bn_backward,
    .reserve = bn_reserve,
    .init = bn_init,
    .destroy = bn_destroy,
    .flops = bn_flops,
    .fuse_relu = 1,
};

Layer *bn_parse(Builder *b, Args *a, Shape in, const char *name) {
    real eps, momentum;
    if (args_real(b, a, "eps", 1e-5, 1e-12, 1, &eps) ||
        args_real(b, a, "momentum", 0.1, 0, 1, &momentum))
        return NULL;
    BatchNorm *bn = layer_alloc(b, sizeof *bn, &BN_OPS, in, name);
    if (!bn) return NULL;
    bn->eps = eps;
    bn->momentum = momentum;
    bn->mean = real_alloc((size_t)in.c);
    bn->invstd = real_alloc((size_t)in.c);
    int C = in.c;
    if (!bn->mean || !bn->invstd ||
        builder_tensor(b, &bn->base, "gamma", 1, &C, &bn->gamma, &bn->dgamma, 0, 0) ||
        builder_tensor(b, &bn->base, "beta", 1, &C, &bn->beta, &bn->dbeta, 0, 0) ||
        builder_tensor(b, &bn->base, "running_mean", 1, &C, &bn->rmean, NULL, 1, 0) ||
        builder_tensor(b, &bn->base, "running_var", 1, &C, &bn->rvar, NULL, 1, 0)) {
        layer_free(&bn->base);
        return b->err[0] ? NULL : builder_fail(b, "out of memory");
    }
    return &bn->base;
}

int bn_affine(Layer *l, real *scale, real *shift) {
    if (l->ops != &BN_OPS) return -1;
    BatchNorm *bn = (BatchNorm *)l;
    for (int ch = 0; ch < l->in.c; ch++) {
        scale[ch] = (real)(bn->gamma[ch] / sqrt((double)bn->rvar[ch] + bn->eps));
        shift[ch] = bn->beta[ch] - bn->rmean[ch] * scale[ch];
    }
    return 0;
}
