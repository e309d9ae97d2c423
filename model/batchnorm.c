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

static void bn_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    BatchNorm *bn = (BatchNorm *)l;
    int C = l->in.c;
    size_t hw = (size_t)l->in.h * l->in.w, m = (size_t)n * hw;
    int train = c->train;
#pragma omp parallel for schedule(static) if (m * C > PAR_MIN)
    for (int ch = 0; ch < C; ch++) {
        real mean, invstd;
        if (train) {
            double s = 0, ss = 0;
            for (int i = 0; i < n; i++) {
                const real *p = x + ((size_t)i * C + ch) * hw;
                for (size_t j = 0; j < hw; j++) s += p[j];
            }
            double mu = s / (double)m;
            for (int i = 0; i < n; i++) {
                const real *p = x + ((size_t)i * C + ch) * hw;
                for (size_t j = 0; j < hw; j++) {
                    double d = p[j] - mu;
                    ss += d * d;
                }
            }
            double var = ss / (double)m;
            mean = (real)mu;
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
            for (size_t j = 0; j < hw; j++) q[j] = p[j] * sc + sh;
        }
    }
}

static void bn_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx, int n,
                        Ctx *c) {
    (void)y;
    BatchNorm *bn = (BatchNorm *)l;
    int C = l->in.c;
    size_t hw = (size_t)l->in.h * l->in.w, m = (size_t)n * hw;
    int train = c->train;
#pragma omp parallel for schedule(static) if (m * C > PAR_MIN)
    for (int ch = 0; ch < C; ch++) {
        real mean = bn->mean[ch], invstd = bn->invstd[ch];
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++) {
            const real *p = x + ((size_t)i * C + ch) * hw, *g = dy + ((size_t)i * C + ch) * hw;
            for (size_t j = 0; j < hw; j++) {
                sdy += g[j];
                sdyx += g[j] * (p[j] - mean) * invstd;
            }
        }
        bn->dgamma[ch] += (real)sdyx;
        bn->dbeta[ch] += (real)sdy;
        if (!dx) continue;
        real k = bn->gamma[ch] * invstd;
        // training: dx = k * (dy - mean(dy) - xhat * mean(dy * xhat)); eval: dx = k * dy
        real a = train ? (real)(sdy / (double)m) : 0, b = train ? (real)(sdyx / (double)m) : 0;
        for (int i = 0; i < n; i++) {
            const real *p = x + ((size_t)i * C + ch) * hw, *g = dy + ((size_t)i * C + ch) * hw;
            real *q = dx + ((size_t)i * C + ch) * hw;
            for (size_t j = 0; j < hw; j++) q[j] = k * (g[j] - a - (p[j] - mean) * invstd * b);
        }
    }
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
    .init = bn_init,
    .destroy = bn_destroy,
    .flops = bn_flops,
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
