// avgpool.c: average pooling over k x k windows, and global average pooling.
//
//   avgpool k=2 [stride=k]
//   gap                          (C, H, W) -> (C, 1, 1)
#include <string.h>

#include "layer.h"

typedef struct {
    Layer base;
    int k, stride;   // gap: the whole plane
} AvgPool;

static void avgpool_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    (void)c;
    AvgPool *ap = (AvgPool *)l;
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, k = ap->k, s = ap->stride;
    int kw = k ? k : W, kh = k ? k : H;
    real inv = (real)1 / (real)(kh * kw);
    int planes = n * l->in.c;
#pragma omp parallel for schedule(static) if ((long)planes * H * W > PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        const real *xp = x + (size_t)pl * H * W;
        real *yp = y + (size_t)pl * OH * OW;
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                real acc = 0;
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) acc += xp[(oy * s + ky) * W + ox * s + kx];
                yp[oy * OW + ox] = acc * inv;
            }
    }
}

static void avgpool_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx,
                             int n, Ctx *c) {
    (void)x;
    (void)y;
    (void)c;
    if (!dx) return;
    AvgPool *ap = (AvgPool *)l;
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, k = ap->k, s = ap->stride;
    int kw = k ? k : W, kh = k ? k : H;
    real inv = (real)1 / (real)(kh * kw);
    int planes = n * l->in.c;
#pragma omp parallel for schedule(static) if ((long)planes * H * W > PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        real *d = dx + (size_t)pl * H * W;
        const real *g = dy + (size_t)pl * OH * OW;
        memset(d, 0, (size_t)H * W * sizeof(real));
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                real v = g[oy * OW + ox] * inv;
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) d[(oy * s + ky) * W + ox * s + kx] += v;
            }
    }
}

static double avgpool_flops(const Layer *l) { return (double)shape_size(l->in); }

static const LayerOps AVGPOOL_OPS = {
    .kind = "avgpool",
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .flops = avgpool_flops,
};

Layer *avgpool_parse(Builder *b, Args *a, Shape in, const char *name) {
    int k, stride;
    if (args_int(b, a, "k", 0, 1, 1, 64, &k) || args_int(b, a, "stride", k, 0, 1, 64, &stride))
        return NULL;
    if (in.h < k || in.w < k)
        return builder_fail(b, "avgpool: window %d does not fit input %dx%d", k, in.h, in.w);
    AvgPool *ap = layer_alloc(b, sizeof *ap, &AVGPOOL_OPS, in, name);
    if (!ap) return NULL;
    ap->k = k;
    ap->stride = stride;
    ap->base.out = (Shape){in.c, (in.h - k) / stride + 1, (in.w - k) / stride + 1};
    return &ap->base;
}

Layer *gap_parse(Builder *b, Args *a, Shape in, const char *name) {
    (void)a;
    AvgPool *ap = layer_alloc(b, sizeof *ap, &AVGPOOL_OPS, in, name);
    if (!ap) return NULL;
    ap->k = 0;   // the whole plane
    ap->stride = 1;
    ap->base.out = (Shape){in.c, 1, 1};
    return &ap->base;
}
