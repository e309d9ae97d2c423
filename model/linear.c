// linear.c: fully connected layer, y = x W^T + b, on flat input (C, 1, 1).
//
//   linear out=128 [bias=1]
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct {
    Layer base;
    real *w, *dw;   // (out, in)
    real *b, *db;   // (out), NULL without bias
    real *fold_b;      // (out) bias made by folding a batchnorm; owned
    uint16_t *wpack;   // frozen in bfloat16 mode: W packed into bfloat16 tiles (emo_pack_a); owned
    I8Rows *i8;        // frozen in int8 mode: W in 8 bits, a row per output (emo_pack_i8_rows); owned
} Linear;

static void linear_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    Linear *li = (Linear *)l;
    int in = l->in.c, out = l->out.c;
    if (li->i8 && emo_int8()) {
        // W's bytes are the cost at the batch sizes of live use: 8 bits read once per 4 inputs
        emo_gemv_i8(li->i8, n, x, in, y, out);
    } else if (li->wpack) {
        // y^T (out x n) = W x^T from the packed W, in the workspace; then y is its transpose.
        // W is read once, as bfloat16, where sgemm would copy all of it on every call.
        real *t = c->ws;
        emo_gemm_packed(li->wpack, li->w, in, CblasTrans, out, n, in, x, in, 0, t, n);
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++) y[(size_t)i * out + o] = t[(size_t)o * n + i];
    } else {
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1, x, in, li->w, in, 0, y, out);
    }
    if (li->b || l->relu)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++) {
                real v = y[(size_t)i * out + o] + (li->b ? li->b[o] : 0);
                y[(size_t)i * out + o] = l->relu && v < 0 ? 0 : v;
            }
}

static void linear_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx,
                            int n, Ctx *c) {
    Linear *li = (Linear *)l;
    int in = l->in.c, out = l->out.c;
    if (l->relu) {   // mask dy by the fused ReLU, in the workspace
        real *g = c->ws;
        for (long i = 0; i < (long)n * out; i++) g[i] = y[i] > 0 ? dy[i] : 0;
        dy = g;
    }
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1, dy, out, x, in, 1, li->dw, in);
    if (li->db)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++) li->db[o] += dy[(size_t)i * out + o];
    if (dx)
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1, dy, out, li->w, in, 0, dx,
             in);
}

static long linear_reserve(Layer *l, int n, int with_grads) {
    (void)with_grads;
    return l->relu || ((Linear *)l)->wpack ? (long)n * l->out.c : 0;
}

static void linear_init(Layer *l, Rng *rng) {
    Linear *li = (Linear *)l;
    real bound = (real)(1.0 / sqrt((double)l->in.c));
    size_t nw = (size_t)l->out.c * l->in.c;
    for (size_t i = 0; i < nw; i++) li->w[i] = (2 * rng_uniform(rng) - 1) * bound;
    if (li->b)
        for (int o = 0; o < l->out.c; o++) li->b[o] = (2 * rng_uniform(rng) - 1) * bound;
}

static void linear_destroy(Layer *l) {
    free(((Linear *)l)->fold_b);
    free(((Linear *)l)->wpack);
    emo_free_i8_rows(((Linear *)l)->i8);
}

static double linear_flops(const Layer *l) { return 2.0 * l->in.c * l->out.c; }

static const LayerOps LINEAR_OPS = {
    .kind = "linear",
    .forward = linear_forward,
    .backward = linear_backward,
    .reserve = linear_reserve,
    .init = linear_init,
    .destroy = linear_destroy,
    .flops = linear_flops,
    .fuse_relu = 1,
};

Layer *linear_new(Builder *b, Shape in, const char *name, int out, int bias) {
    if (in.h != 1 || in.w != 1)
        return builder_fail(b, "linear needs flat input, got %dx%dx%d (add 'flatten' or 'gap')",
                            in.c, in.h, in.w);
    Linear *li = layer_alloc(b, sizeof *li, &LINEAR_OPS, in, name);
    if (!li) return NULL;
    li->base.out = (Shape){out, 1, 1};
    int wd[2] = {out, in.c};
    if (builder_tensor(b, &li->base, "w", 2, wd, &li->w, &li->dw, 0, 1) ||
        (bias && builder_tensor(b, &li->base, "b", 1, &out, &li->b, &li->db, 0, 0))) {
        free(li);
        return NULL;
    }
    return &li->base;
}

Layer *linear_parse(Builder *b, Args *a, Shape in, const char *name) {
    int out, bias;
    if (args_int(b, a, "out", 0, 1, 1, 1 << 20, &out) || args_int(b, a, "bias", 1, 0, 0, 1, &bias))
        return NULL;
    return linear_new(b, in, name, out, bias);
}

int linear_fold(Layer *l, const real *scale, const real *shift) {
    if (l->ops != &LINEAR_OPS) return -1;
    Linear *li = (Linear *)l;
    int in = l->in.c, out = l->out.c;
    if (!li->b) {
        if (!(li->fold_b = real_alloc((size_t)out))) return -1;
        memset(li->fold_b, 0, (size_t)out * sizeof(real));
        li->b = li->fold_b;
    }
    for (int o = 0; o < out; o++) {
        for (int i = 0; i < in; i++) li->w[(size_t)o * in + i] *= scale[o];
        li->b[o] = li->b[o] * scale[o] + shift[o];
    }
    return 0;
}

int linear_freeze(Layer *l) {
    if (l->ops != &LINEAR_OPS) return -1;
    Linear *li = (Linear *)l;
    int in = l->in.c, out = l->out.c;
    if (!emo_bf16() || li->wpack || out < 32 || in < 32) return 0;   // narrow: sgemm as it is
    if (emo_int8() && in >= 64 && !(li->i8 = emo_pack_i8_rows(out, in, li->w, in))) return -1;
    size_t len = emo_packed_len(out, in);
    if (!(li->wpack = aligned_alloc(64, len * sizeof(uint16_t)))) return -1;
    emo_pack_a(out, in, li->w, in, li->wpack);
    return 0;
}
