// residual.c: y = main(x) + shortcut(x); the shortcut is the identity or a projection chain.
// The block owns both chains (see arch.c for the syntax).
#include <stdlib.h>

#include "layer.h"

typedef struct {
    Layer base;
    Seq *main, *shortcut;
    real *tmp;   // (nmax, in): the shortcut's input gradient
    real *g;     // (nmax, out): dy masked by a fused ReLU
} Residual;

static void residual_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    Residual *r = (Residual *)l;
    const real *m = seq_forward(r->main, x, n, c);
    const real *s = seq_forward(r->shortcut, x, n, c);
    long len = n * shape_size(l->out);
    if (l->relu) {
#pragma omp parallel for schedule(static) if (len > PAR_MIN)
        for (long i = 0; i < len; i++) y[i] = m[i] + s[i] > 0 ? m[i] + s[i] : 0;
    } else {
#pragma omp parallel for schedule(static) if (len > PAR_MIN)
        for (long i = 0; i < len; i++) y[i] = m[i] + s[i];
    }
}

static void residual_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx,
                              int n, Ctx *c) {
    Residual *r = (Residual *)l;
    if (l->relu) {   // mask dy by the fused ReLU
        long len = n * shape_size(l->out);
#pragma omp parallel for schedule(static) if (len > PAR_MIN)
        for (long i = 0; i < len; i++) r->g[i] = y[i] > 0 ? dy[i] : 0;
        dy = r->g;
    }
    seq_backward(r->main, x, dy, dx, n, c);
    const real *ds = dy;
    if (r->shortcut->n) {
        seq_backward(r->shortcut, x, dy, dx ? r->tmp : NULL, n, c);
        ds = r->tmp;
    }
    if (!dx) return;
    long len = n * shape_size(l->in);
#pragma omp parallel for schedule(static) if (len > PAR_MIN)
    for (long i = 0; i < len; i++) dx[i] += ds[i];
}

static long residual_reserve(Layer *l, int n, int with_grads) {
    Residual *r = (Residual *)l;
    long a = seq_reserve(r->main, n, with_grads), b = seq_reserve(r->shortcut, n, with_grads);
    if (a < 0 || b < 0) return -1;
    free(r->tmp);
    free(r->g);
    r->tmp = r->g = NULL;
    if (with_grads && r->shortcut->n && !(r->tmp = real_alloc((size_t)n * shape_size(l->in))))
        return -1;
    if (with_grads && l->relu && !(r->g = real_alloc((size_t)n * shape_size(l->out))))
        return -1;
    return a > b ? a : b;
}

static void residual_init(Layer *l, Rng *rng) {
    Residual *r = (Residual *)l;
    seq_init(r->main, rng);
    seq_init(r->shortcut, rng);
}

static void residual_destroy(Layer *l) {
    Residual *r = (Residual *)l;
    seq_free(r->main);
    seq_free(r->shortcut);
    free(r->tmp);
    free(r->g);
}

static double residual_flops(const Layer *l) {
    const Residual *r = (const Residual *)l;
    return seq_flops(r->main) + seq_flops(r->shortcut) + (double)shape_size(l->out);
}

static const LayerOps RESIDUAL_OPS = {
    .kind = "residual",
    .forward = residual_forward,
    .backward = residual_backward,
    .reserve = residual_reserve,
    .init = residual_init,
    .destroy = residual_destroy,
    .flops = residual_flops,
    .fuse_relu = 1,
};

Layer *residual_new(Builder *b, Seq *main, Seq *shortcut, const char *name) {
    if (main->n == 0) return builder_fail(b, "residual block %s has no layers", name);
    Shape m = seq_out(main), s = seq_out(shortcut);
    if (m.c != s.c || m.h != s.h || m.w != s.w)
        return builder_fail(b,
                            "residual block %s: main path gives %dx%dx%d but the shortcut "
                            "gives %dx%dx%d",
                            name, m.c, m.h, m.w, s.c, s.h, s.w);
    Residual *r = layer_alloc(b, sizeof *r, &RESIDUAL_OPS, main->in, name);
    if (!r) return NULL;
    r->main = main;
    r->shortcut = shortcut;
    r->base.out = m;
    return &r->base;
}

int residual_seqs(Layer *l, Seq **main, Seq **shortcut) {
    if (l->ops != &RESIDUAL_OPS) return -1;
    *main = ((Residual *)l)->main;
    *shortcut = ((Residual *)l)->shortcut;
    return 0;
}
