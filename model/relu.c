// relu.c: y = max(x, 0).
//
//   relu
#include "layer.h"

static void relu_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    (void)c;
    long m = n * shape_size(l->in);
#pragma omp parallel for schedule(static) if (m > PAR_MIN)
    for (long i = 0; i < m; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

static void relu_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx,
                          int n, Ctx *c) {
    (void)x;
    (void)c;
    if (!dx) return;
    long m = n * shape_size(l->in);
#pragma omp parallel for schedule(static) if (m > PAR_MIN)
    for (long i = 0; i < m; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
}

static const LayerOps RELU_OPS = {
    .kind = "relu", .forward = relu_forward, .backward = relu_backward};

Layer *relu_parse(Builder *b, Args *a, Shape in, const char *name) {
    (void)a;
    return layer_alloc(b, sizeof(Layer), &RELU_OPS, in, name);
}
