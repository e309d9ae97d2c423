// cbam.c: Convolutional Block Attention Module (Woo et al. 2018).
//
//   cbam [r=8] [k=7]
//
// Channel attention: the average- and max-pooled descriptors (n, C) go through one shared
// MLP (C -> C/r -> C, ReLU between), are summed and squashed: a = sigmoid(mlp(avg) + mlp(max)).
// Spatial attention: the channel-wise mean and max of x*a (n, 2, H, W) go through a k x k conv
// (no bias) and a sigmoid: s. Output y = x * a * s. The block owns its MLP and conv layers.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct {
    Layer base;
    int r, k, hidden;
    Layer *fc1, *fc2, *sp;
    // per-batch state, nmax samples
    real *pool;      // (2n, C): rows 0..n-1 average, n..2n-1 max
    int32_t *cidx;   // (n, C): where the channel max came from
    real *hid, *hre; // (2n, hidden): fc1 output, after ReLU
    real *mlp;       // (2n, C)
    real *att_c;     // (n, C)
    real *x1;        // (n, C, H, W): x * att_c
    real *smap;      // (n, 2, H, W): channel mean, channel max of x1
    int32_t *sidx;   // (n, H, W): which channel gave the max
    real *z, *att_s; // (n, 1, H, W): conv output, sigmoid of it
    // backward scratch
    real *g_x1, *g_smap, *g_z, *g_mlp, *g_hre, *g_hid, *g_pool;
} Cbam;

static real sigmoid(real v) { return (real)1 / ((real)1 + (real)exp(-(double)v)); }

static void cbam_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    Cbam *cb = (Cbam *)l;
    int C = l->in.c;
    size_t hw = (size_t)l->in.h * l->in.w;
    long planes = (long)n * C;
#pragma omp parallel for schedule(static) if (planes * (long)hw > PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        const real *p = x + pl * hw;
        real s = 0, mx = p[0];
        int32_t mi = 0;
        for (size_t j = 0; j < hw; j++) {
            s += p[j];
            if (p[j] > mx) {
                mx = p[j];
                mi = (int32_t)j;
            }
        }
        cb->pool[pl] = s / (real)hw;
        cb->pool[planes + pl] = mx;
        cb->cidx[pl] = mi;
    }
    cb->fc1->ops->forward(cb->fc1, cb->pool, cb->hid, 2 * n, c);
    for (long i = 0; i < 2L * n * cb->hidden; i++) cb->hre[i] = cb->hid[i] > 0 ? cb->hid[i] : 0;
    cb->fc2->ops->forward(cb->fc2, cb->hre, cb->mlp, 2 * n, c);
    for (long pl = 0; pl < planes; pl++) cb->att_c[pl] = sigmoid(cb->mlp[pl] + cb->mlp[planes + pl]);
#pragma omp parallel for schedule(static) if (planes * (long)hw > PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        const real *p = x + pl * hw;
        real *q = cb->x1 + pl * hw, a = cb->att_c[pl];
        for (size_t j = 0; j < hw; j++) q[j] = p[j] * a;
    }
#pragma omp parallel for schedule(static) if (planes * (long)hw > PAR_MIN)
    for (int i = 0; i < n; i++) {
        real *mean = cb->smap + (size_t)i * 2 * hw, *mx = mean + hw;
        int32_t *si = cb->sidx + (size_t)i * hw;
        const real *xi = cb->x1 + (size_t)i * C * hw;
        for (size_t j = 0; j < hw; j++) {
            mean[j] = xi[j];
            mx[j] = xi[j];
            si[j] = 0;
        }
        for (int ch = 1; ch < C; ch++) {
            const real *p = xi + (size_t)ch * hw;
            for (size_t j = 0; j < hw; j++) {
                mean[j] += p[j];
                if (p[j] > mx[j]) {
                    mx[j] = p[j];
                    si[j] = ch;
                }
            }
        }
        for (size_t j = 0; j < hw; j++) mean[j] /= (real)C;
    }
    cb->sp->ops->forward(cb->sp, cb->smap, cb->z, n, c);
    for (size_t j = 0; j < (size_t)n * hw; j++) cb->att_s[j] = sigmoid(cb->z[j]);
#pragma omp parallel for schedule(static) if (planes * (long)hw > PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        const real *p = cb->x1 + pl * hw, *s = cb->att_s + (pl / C) * hw;
        real *q = y + pl * hw;
        for (size_t j = 0; j < hw; j++) q[j] = p[j] * s[j];
    }
}

static void cbam_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx,
                          int n, Ctx *c) {
    (void)y;
    Cbam *cb = (Cbam *)l;
    int C = l->in.c;
    size_t hw = (size_t)l->in.h * l->in.w;
    long planes = (long)n * C;
    // spatial attention: y = x1 * s
#pragma omp parallel for schedule(static) if (planes * (long)hw > PAR_MIN)
    for (int i = 0; i < n; i++) {
        const real *s = cb->att_s + (size_t)i * hw;
        real *gz = cb->g_z + (size_t)i * hw;
        memset(gz, 0, hw * sizeof(real));
        for (int ch = 0; ch < C; ch++) {
            size_t o = ((size_t)i * C + ch) * hw;
            for (size_t j = 0; j < hw; j++) {
                cb->g_x1[o + j] = dy[o + j] * s[j];
                gz[j] += dy[o + j] * cb->x1[o + j];
            }
        }
        for (size_t j = 0; j < hw; j++) gz[j] *= s[j] * (1 - s[j]);
    }
    cb->sp->ops->backward(cb->sp, cb->smap, cb->z, cb->g_z, cb->g_smap, n, c);
#pragma omp parallel for schedule(static) if (planes * (long)hw > PAR_MIN)
    for (int i = 0; i < n; i++) {
        const real *gmean = cb->g_smap + (size_t)i * 2 * hw, *gmax = gmean + hw;
        const int32_t *si = cb->sidx + (size_t)i * hw;
        for (int ch = 0; ch < C; ch++) {
            real *g = cb->g_x1 + ((size_t)i * C + ch) * hw;
            for (size_t j = 0; j < hw; j++)
                g[j] += gmean[j] / (real)C + (si[j] == ch ? gmax[j] : 0);
        }
    }
    // channel attention: x1 = x * a
#pragma omp parallel for schedule(static) if (planes * (long)hw > PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        const real *g = cb->g_x1 + pl * hw, *p = x + pl * hw;
        real a = cb->att_c[pl], ga = 0;
        for (size_t j = 0; j < hw; j++) ga += g[j] * p[j];
        if (dx)
            for (size_t j = 0; j < hw; j++) dx[pl * hw + j] = g[j] * a;
        cb->g_mlp[pl] = cb->g_mlp[planes + pl] = ga * a * (1 - a);
    }
    cb->fc2->ops->backward(cb->fc2, cb->hre, cb->mlp, cb->g_mlp, cb->g_hre, 2 * n, c);
    for (long i = 0; i < 2L * n * cb->hidden; i++)
        cb->g_hid[i] = cb->hid[i] > 0 ? cb->g_hre[i] : 0;
    cb->fc1->ops->backward(cb->fc1, cb->pool, cb->hid, cb->g_hid, dx ? cb->g_pool : NULL, 2 * n,
                           c);
    if (!dx) return;
#pragma omp parallel for schedule(static) if (planes * (long)hw > PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        real ga = cb->g_pool[pl] / (real)hw;
        real *d = dx + pl * hw;
        for (size_t j = 0; j < hw; j++) d[j] += ga;
        d[cb->cidx[pl]] += cb->g_pool[planes + pl];
    }
}

#define CBAM_BUFFERS(X) \
    X(pool, 2 * nc) X(hid, 2 * nh) X(hre, 2 * nh) X(mlp, 2 * nc) X(att_c, nc) X(x1, nchw) \
    X(smap, 2 * nhw) X(z, nhw) X(att_s, nhw) X(g_x1, nchw) X(g_smap, 2 * nhw) X(g_z, nhw) \
    X(g_mlp, 2 * nc) X(g_hre, 2 * nh) X(g_hid, 2 * nh) X(g_pool, 2 * nc)

static void cbam_free_state(Cbam *cb) {
#define FREE(f, size) free(cb->f);
    CBAM_BUFFERS(FREE)
#undef FREE
    free(cb->cidx);
    free(cb->sidx);
}

static long cbam_reserve(Layer *l, int n, int with_grads) {
    (void)with_grads;
    Cbam *cb = (Cbam *)l;
    cbam_free_state(cb);
    size_t hw = (size_t)l->in.h * l->in.w, nc = (size_t)n * l->in.c, nh = (size_t)n * cb->hidden;
    size_t nhw = n * hw, nchw = nc * hw;
    int ok = 1;
#define ALLOC(f, size) ok &= (cb->f = real_alloc(size)) != NULL;
    CBAM_BUFFERS(ALLOC)
#undef ALLOC
    cb->cidx = malloc(nc * sizeof *cb->cidx);
    cb->sidx = malloc(nhw * sizeof *cb->sidx);
    if (!ok || !cb->cidx || !cb->sidx) return -1;
    return cb->sp->ops->reserve(cb->sp, n, with_grads);
}

static void cbam_init(Layer *l, Rng *rng) {
    Cbam *cb = (Cbam *)l;
    cb->fc1->ops->init(cb->fc1, rng);
    cb->fc2->ops->init(cb->fc2, rng);
    cb->sp->ops->init(cb->sp, rng);
}

static void cbam_destroy(Layer *l) {
    Cbam *cb = (Cbam *)l;
    cbam_free_state(cb);
    layer_free(cb->fc1);
    layer_free(cb->fc2);
    layer_free(cb->sp);
}

static double cbam_flops(const Layer *l) {
    const Cbam *cb = (const Cbam *)l;
    return 2 * (cb->fc1->ops->flops(cb->fc1) + cb->fc2->ops->flops(cb->fc2)) +
           cb->sp->ops->flops(cb->sp) + 6.0 * shape_size(l->in);
}

static const LayerOps CBAM_OPS = {
    .kind = "cbam",
    .forward = cbam_forward,
    .backward = cbam_backward,
    .reserve = cbam_reserve,
    .init = cbam_init,
    .destroy = cbam_destroy,
    .flops = cbam_flops,
};

Layer *cbam_parse(Builder *b, Args *a, Shape in, const char *name) {
    int r, k;
    if (args_int(b, a, "r", 8, 0, 1, 4096, &r) || args_int(b, a, "k", 7, 0, 1, 15, &k))
        return NULL;
    if (k % 2 == 0) return builder_fail(b, "cbam: k=%d must be odd", k);
    Cbam *cb = layer_alloc(b, sizeof *cb, &CBAM_OPS, in, name);
    if (!cb) return NULL;
    cb->r = r;
    cb->k = k;
    cb->hidden = in.c / r > 0 ? in.c / r : 1;
    char sub[96];
    snprintf(sub, sizeof sub, "%s.fc1", name);
    cb->fc1 = linear_new(b, (Shape){in.c, 1, 1}, sub, cb->hidden, 1);
    snprintf(sub, sizeof sub, "%s.fc2", name);
    if (cb->fc1) cb->fc2 = linear_new(b, (Shape){cb->hidden, 1, 1}, sub, in.c, 1);
    snprintf(sub, sizeof sub, "%s.sp", name);
    if (cb->fc2) cb->sp = conv_new(b, (Shape){2, in.h, in.w}, sub, 1, k, 1, k / 2, 1, 0);
    if (!cb->sp) {
        layer_free(&cb->base);
        return NULL;
    }
    return &cb->base;
}
