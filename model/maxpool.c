// maxpool.c: max pooling; the winner of each window gets the gradient.
//
//   maxpool k=2 [stride=k] [pad=0]      (padding never wins, as in PyTorch)
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct {
    Layer base;
    int k, stride, pad;
    int fast;       // k=2, stride=2, pad=0: the winner is stored as a code 0..3 instead
    int32_t *idx;   // (nmax, C, OH, OW): index of the winner inside its input plane
    uint8_t *code;  // (nmax, C, OH, OW): fast path, winner's position in its 2x2 window
} MaxPool;

static void maxpool_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    MaxPool *mp = (MaxPool *)l;
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, k = mp->k, s = mp->stride;
    int planes = n * l->in.c;
#pragma omp parallel for schedule(static) if ((long)planes * H * W > PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        const real *xp = x + (size_t)pl * H * W;
        real *yp = y + (size_t)pl * OH * OW;
        if (mp->fast && c->infer) {   // 2x2, stride 2, and no backward: just the maxima
            for (int oy = 0; oy < OH; oy++) {
                const real *r0 = xp + (size_t)2 * oy * W, *r1 = r0 + W;
                real *restrict q = yp + (size_t)oy * OW;
#pragma omp simd
                for (int ox = 0; ox < OW; ox++) {
                    real a = r0[2 * ox] > r0[2 * ox + 1] ? r0[2 * ox] : r0[2 * ox + 1];
                    real b = r1[2 * ox] > r1[2 * ox + 1] ? r1[2 * ox] : r1[2 * ox + 1];
                    q[ox] = b > a ? b : a;
                }
            }
            continue;
        }
        if (mp->fast) {   // 2x2, stride 2: no bounds checks; the winner as a code 0..3
            for (int oy = 0; oy < OH; oy++) {
                const real *r0 = xp + (size_t)2 * oy * W, *r1 = r0 + W;
                real *restrict q = yp + (size_t)oy * OW;
                uint8_t *restrict code = mp->code + (size_t)pl * OH * OW + (size_t)oy * OW;
#pragma omp simd
                for (int ox = 0; ox < OW; ox++)
                    q[ox] = maxpool2_pick(r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1],
                                          &code[ox]);
            }
            continue;
        }
        int32_t *ip = mp->idx + (size_t)pl * OH * OW;
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                real best = -FLT_MAX;
                int32_t bi = -1;
                for (int ky = 0; ky < k; ky++) {
                    int iy = oy * s - mp->pad + ky;
                    if (iy < 0 || iy >= H) continue;
                    for (int kx = 0; kx < k; kx++) {
                        int ix = ox * s - mp->pad + kx;
                        if (ix < 0 || ix >= W) continue;
                        real v = xp[iy * W + ix];
                        if (bi < 0 || v > best) {
                            best = v;
                            bi = iy * W + ix;
                        }
                    }
                }
                yp[oy * OW + ox] = best;
                ip[oy * OW + ox] = bi;
            }
    }
}

static const real SEL[4][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};

static void maxpool_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx,
                             int n, Ctx *c) {
    (void)x;
    (void)y;
    (void)c;
    if (!dx) return;
    MaxPool *mp = (MaxPool *)l;
    size_t hw = (size_t)l->in.h * l->in.w, ohw = (size_t)l->out.h * l->out.w;
    int planes = n * l->in.c;
    if (mp->fast) {
        int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
#pragma omp parallel for schedule(static) if (planes * hw > PAR_MIN)
        for (int pl = 0; pl < planes; pl++) {
            const real *g = dy + pl * ohw;
            real *d = dx + pl * hw;
            if ((H | W) & 1) memset(d, 0, hw * sizeof(real));   // a row or column no window sees
            for (int oy = 0; oy < OH; oy++) {
                real *restrict d0 = d + (size_t)2 * oy * W, *restrict d1 = d0 + W;
                const real *restrict gg = g + (size_t)oy * OW;
                const uint8_t *restrict code = mp->code + (size_t)pl * ohw + (size_t)oy * OW;
#pragma omp simd
                for (int ox = 0; ox < OW; ox++) {
                    real gv = gg[ox];
                    int cd = code[ox];
                    d0[2 * ox] = SEL[cd][0] * gv;   // table lookups, not branches
                    d0[2 * ox + 1] = SEL[cd][1] * gv;
                    d1[2 * ox] = SEL[cd][2] * gv;
                    d1[2 * ox + 1] = SEL[cd][3] * gv;
                }
            }
        }
        return;
    }
#pragma omp parallel for schedule(static) if (planes * hw > PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        real *d = dx + pl * hw;
        const real *g = dy + pl * ohw;
        const int32_t *ip = mp->idx + pl * ohw;
        memset(d, 0, hw * sizeof(real));
        for (size_t j = 0; j < ohw; j++) d[ip[j]] += g[j];
    }
}

static long maxpool_reserve(Layer *l, int n, int with_grads) {
    (void)with_grads;
    MaxPool *mp = (MaxPool *)l;
    free(mp->idx);
    free(mp->code);
    mp->idx = NULL;
    mp->code = NULL;
    if (mp->fast) return (mp->code = malloc((size_t)n * shape_size(l->out))) ? 0 : -1;
    mp->idx = malloc((size_t)n * shape_size(l->out) * sizeof *mp->idx);
    return mp->idx ? 0 : -1;
}

static void maxpool_destroy(Layer *l) {
    free(((MaxPool *)l)->idx);
    free(((MaxPool *)l)->code);
}

static const LayerOps MAXPOOL_OPS = {
    .kind = "maxpool",
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .reserve = maxpool_reserve,
    .destroy = maxpool_destroy,
};

int maxpool_fusable(const Layer *l) {
    return l->ops == &MAXPOOL_OPS && ((const MaxPool *)l)->fast && l->in.h % 2 == 0 &&
           l->in.w % 2 == 0;
}

Layer *maxpool_parse(Builder *b, Args *a, Shape in, const char *name) {
    int k, stride, pad;
    if (args_int(b, a, "k", 0, 1, 1, 64, &k) || args_int(b, a, "stride", k, 0, 1, 64, &stride) ||
        args_int(b, a, "pad", 0, 0, 0, 32, &pad))
        return NULL;
    if (2 * pad > k) return builder_fail(b, "maxpool: pad=%d must be at most k/2", pad);
    if (in.h + 2 * pad < k || in.w + 2 * pad < k)
        return builder_fail(b, "maxpool: window %d does not fit input %dx%d", k, in.h, in.w);
    MaxPool *mp = layer_alloc(b, sizeof *mp, &MAXPOOL_OPS, in, name);
    if (!mp) return NULL;
    mp->k = k;
    mp->stride = stride;
    mp->pad = pad;
    mp->fast = k == 2 && stride == 2 && pad == 0;
    mp->base.out = (Shape){in.c, (in.h + 2 * pad - k) / stride + 1, (in.w + 2 * pad - k) / stride + 1};
    return &mp->base;
}
