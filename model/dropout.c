// dropout.c: inverted dropout of single units (dropout) or of whole channels (dropout2d,
// PyTorch's Dropout2d). Identity outside training.
//
//   dropout p=0.5
//   dropout2d p=0.1
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct {
    Layer base;
    real p;
    int channels;   // 1: one draw per (sample, channel)
    int active;     // the last forward dropped units
    real *mask;     // (nmax, C[, H, W]): 0 or 1/(1-p)
} Dropout;

static void dropout_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    Dropout *d = (Dropout *)l;
    long size = shape_size(l->in), m = n * size;
    d->active = c->train && c->dropout && d->p > 0;
    if (!d->active) {
        memcpy(y, x, (size_t)m * sizeof(real));
        return;
    }
    real keep = 1 / (1 - d->p);
    long units = d->channels ? (long)n * l->in.c : m, per = m / units;
    // four 16-bit uniforms per 64-bit draw: p is applied in steps of 1/65536
    uint32_t drop = (uint32_t)(d->p * 65536.0 + 0.5);
    for (long u = 0; u < units; u += 4) {
        uint64_t r = rng_u64(c->rng);
        for (long v = u; v < u + 4 && v < units; v++, r >>= 16)
            d->mask[v] = (uint32_t)(r & 0xffff) < drop ? 0 : keep;
    }
    if (per == 1) {
#pragma omp parallel for schedule(static) if (m > PAR_MIN)
        for (long i = 0; i < m; i++) y[i] = x[i] * d->mask[i];
        return;
    }
#pragma omp parallel for schedule(static) if (m > PAR_MIN)
    for (long u = 0; u < units; u++)
        for (long j = u * per; j < (u + 1) * per; j++) y[j] = x[j] * d->mask[u];
}

static void dropout_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx,
                             int n, Ctx *c) {
    (void)x;
    (void)y;
    (void)c;
    Dropout *d = (Dropout *)l;
    if (!dx) return;
    long m = n * shape_size(l->in);
    if (!d->active) {
        memcpy(dx, dy, (size_t)m * sizeof(real));
        return;
    }
    long per = d->channels ? (long)l->in.h * l->in.w : 1, units = m / per;
    if (per == 1) {
#pragma omp parallel for schedule(static) if (m > PAR_MIN)
        for (long i = 0; i < m; i++) dx[i] = dy[i] * d->mask[i];
        return;
    }
#pragma omp parallel for schedule(static) if (m > PAR_MIN)
    for (long u = 0; u < units; u++)
        for (long j = u * per; j < (u + 1) * per; j++) dx[j] = dy[j] * d->mask[u];
}

static long dropout_reserve(Layer *l, int n, int with_grads) {
    (void)with_grads;
    Dropout *d = (Dropout *)l;
    free(d->mask);
    d->mask = real_alloc((size_t)n * (d->channels ? (size_t)l->in.c : (size_t)shape_size(l->in)));
    return d->mask ? 0 : -1;
}

static void dropout_destroy(Layer *l) { free(((Dropout *)l)->mask); }

static const LayerOps DROPOUT_OPS = {
    .kind = "dropout",
    .forward = dropout_forward,
    .backward = dropout_backward,
    .reserve = dropout_reserve,
    .destroy = dropout_destroy,
};

static Layer *make(Builder *b, Args *a, Shape in, const char *name, int channels) {
    real p;
    if (args_real(b, a, "p", 0.5, 0, 0.99, &p)) return NULL;
    Dropout *d = layer_alloc(b, sizeof *d, &DROPOUT_OPS, in, name);
    if (!d) return NULL;
    d->p = p;
    d->channels = channels;
    return &d->base;
}

Layer *dropout_parse(Builder *b, Args *a, Shape in, const char *name) {
    return make(b, a, in, name, 0);
}

Layer *dropout2d_parse(Builder *b, Args *a, Shape in, const char *name) {
    return make(b, a, in, name, 1);
}
