// seq.c: a chain of layers and its activation buffers; the unit that nets and blocks share.
#include <stdlib.h>
#include <string.h>

#include "layer.h"

void *layer_alloc(Builder *b, size_t size, const LayerOps *ops, Shape in, const char *name) {
    Layer *l = calloc(1, size);
    if (!l) return builder_fail(b, "out of memory");
    l->ops = ops;
    l->in = l->out = in;
    snprintf(l->name, sizeof l->name, "%s", name);
    return l;
}

void layer_free(Layer *l) {
    if (!l) return;
    if (l->ops->destroy) l->ops->destroy(l);
    free(l);
}

Seq *seq_new(Shape in) {
    Seq *s = calloc(1, sizeof *s);
    if (s) s->in = in;
    return s;
}

static void seq_free_buffers(Seq *s) {
    for (int i = 0; i < s->n; i++) {
        if (s->out) free(s->out[i]);
        if (s->grad) free(s->grad[i]);
    }
    free(s->out);
    free(s->grad);
    s->out = s->grad = NULL;
}

void seq_free(Seq *s) {
    if (!s) return;
    seq_free_buffers(s);
    for (int i = 0; i < s->n; i++) layer_free(s->L[i]);
    free(s->L);
    free(s);
}

int seq_push(Seq *s, Layer *l) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        Layer **L = realloc(s->L, (size_t)cap * sizeof *L);
        if (!L) return -1;
        s->L = L;
        s->cap = cap;
    }
    s->L[s->n++] = l;
    return 0;
}

Shape seq_out(const Seq *s) { return s->n ? s->L[s->n - 1]->out : s->in; }

long seq_reserve(Seq *s, int nmax, int with_grads) {
    seq_free_buffers(s);
    if (s->n == 0) return 0;
    s->out = calloc((size_t)s->n, sizeof *s->out);
    s->grad = calloc((size_t)s->n, sizeof *s->grad);
    if (!s->out || !s->grad) return -1;
    long ws = 0;
    for (int i = 0; i < s->n; i++) {
        Layer *l = s->L[i];
        size_t sz = (size_t)nmax * (size_t)shape_size(l->out);
        s->out[i] = real_alloc(sz);
        if (!s->out[i]) return -1;
        if (with_grads && i + 1 < s->n && !(s->grad[i] = real_alloc(sz))) return -1;
        long need = l->ops->reserve ? l->ops->reserve(l, nmax, with_grads) : 0;
        if (need < 0) return -1;
        if (need > ws) ws = need;
    }
    return ws;
}

const real *seq_forward(Seq *s, const real *x, int n, Ctx *c) {
    const real *in = x;
    for (int i = 0; i < s->n; i++) {
        s->L[i]->ops->forward(s->L[i], in, s->out[i], n, c);
        in = s->out[i];
    }
    return in;
}

void seq_backward(Seq *s, const real *x, const real *dy, real *dx, int n, Ctx *c) {
    for (int i = s->n - 1; i >= 0; i--) {
        const real *xi = i ? s->out[i - 1] : x;
        const real *dyi = i == s->n - 1 ? dy : s->grad[i];
        real *dxi = i ? s->grad[i - 1] : dx;
        s->L[i]->ops->backward(s->L[i], xi, s->out[i], dyi, dxi, n, c);
    }
}

void seq_init(Seq *s, Rng *rng) {
    for (int i = 0; i < s->n; i++)
        if (s->L[i]->ops->init) s->L[i]->ops->init(s->L[i], rng);
}

double seq_flops(const Seq *s) {
    double f = 0;
    for (int i = 0; i < s->n; i++)
        if (s->L[i]->ops->flops) f += s->L[i]->ops->flops(s->L[i]);
    return f;
}
