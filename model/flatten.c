// flatten.c: (C, H, W) -> (C*H*W, 1, 1). NCHW memory is already flat, so this copies.
//
//   flatten
#include <string.h>

#include "layer.h"

static void flatten_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    (void)c;
    memcpy(y, x, (size_t)n * shape_size(l->in) * sizeof(real));
}

static void flatten_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx,
                             int n, Ctx *c) {
    (void)x;
    (void)y;
    (void)c;
    if (dx) memcpy(dx, dy, (size_t)n * shape_size(l->in) * sizeof(real));
}

static const LayerOps FLATTEN_OPS = {
    .kind = "flatten", .forward = flatten_forward, .backward = flatten_backward};

Layer *flatten_parse(Builder *b, Args *a, Shape in, const char *name) {
    (void)a;
    Layer *l = layer_alloc(b, sizeof(Layer), &FLATTEN_OPS, in, name);
    if (l) l->out = (Shape){(int)shape_size(in), 1, 1};
    return l;
}
