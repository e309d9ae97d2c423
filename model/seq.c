// seq.c: a chain of layers and its activation buffers; the unit that nets and blocks share.
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
        if (s->out && !s->L[i]->alias && !s->borrowed) free(s->out[i]);
        if (s->grad) free(s->grad[i]);   // NULL before an alias layer
    }
    free(s->out);
    free(s->grad);
    s->out = s->grad = NULL;
    s->borrowed = 0;
}

void seq_free(Seq *s) {
    if (!s) return;
    seq_free_buffers(s);
    for (int i = 0; i < s->n; i++) layer_free(s->L[i]);
    free(s->L);
    free(s);
}

int seq_push(Seq *s, Layer *l) {
    Layer *prev = s->n ? s->L[s->n - 1] : NULL;
    if (strcmp(l->ops->kind, "relu") == 0 && prev && prev->ops->fuse_relu && !prev->relu) {
        prev->relu = 1;
        l->alias = 1;
    }
    if (prev && prev->alias) prev = s->L[s->n - 2];   // the fused ReLU's producer
    if (prev && prev->ops->fuse_pool && !prev->pool && maxpool_fusable(l)) {
        prev->pool = 1;
        l->pooled = 1;
    }
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

// Both reserves: with act, the outputs are left to seq_bind and *act gets the reals the
// biggest needs; else each layer gets its own (and gradients with_grads).
static long reserve(Seq *s, int nmax, int with_grads, size_t *act) {
    seq_free_buffers(s);
    if (act) *act = 0;
    if (s->n == 0) return 0;
    s->out = calloc((size_t)s->n, sizeof *s->out);
    s->grad = calloc((size_t)s->n, sizeof *s->grad);
    if (!s->out || !s->grad) return -1;
    s->borrowed = act != NULL;
    long ws = 0;
    for (int i = 0; i < s->n; i++) {
        Layer *l = s->L[i];
        size_t sz = (size_t)nmax * (size_t)shape_size(l->out);
        if (l->alias)
            s->out[i] = s->out[i - 1];
        else if (act)
            *act = sz > *act ? sz : *act;
        else if (!(s->out[i] = real_alloc(sz)))
            return -1;
        int next_alias = i + 1 < s->n && s->L[i + 1]->alias;
        if (with_grads && i + 1 < s->n && !next_alias && !(s->grad[i] = real_alloc(sz)))
            return -1;
        if (l->alias) continue;
        long need = l->ops->reserve ? l->ops->reserve(l, nmax, with_grads) : 0;
        if (need < 0) return -1;
        if (need > ws) ws = need;
    }
    return ws;
}

long seq_reserve(Seq *s, int nmax, int with_grads) { return reserve(s, nmax, with_grads, NULL); }

long seq_reserve_shared(Seq *s, int nmax, size_t *act) { return reserve(s, nmax, 0, act); }

void seq_bind(Seq *s, real *const act[2]) {
    for (int i = 0, k = 0; i < s->n; i++)
        s->out[i] = s->L[i]->alias ? s->out[i - 1] : act[k++ & 1];
}

// Whether layer i is skipped: a fused ReLU, or a max-pool that its producer does.
static int seq_skip(const Seq *s, int i, const Ctx *c) {
    return s->L[i]->alias || (s->L[i]->pooled && c->train);
}

// The layer whose output layer i writes (and whose output gradient it takes): the max-pool
// after it when it does that (past a fused ReLU), else itself.
static int seq_top(const Seq *s, int i, const Ctx *c) {
    if (!s->L[i]->pool || !c->train) return i;
    return s->L[i + 1]->alias ? i + 2 : i + 1;
}

const real *seq_forward(Seq *s, const real *x, int n, Ctx *c) {
    const real *in = x;
    for (int i = 0; i < s->n; i++) {
        if (!seq_skip(s, i, c)) s->L[i]->ops->forward(s->L[i], in, s->out[seq_top(s, i, c)], n, c);
        in = s->out[i];
    }
    return in;
}

// dLoss/dout[i]: the caller's dy past the last layer, skipping alias layers.
static real *grad_at(Seq *s, int i, const real *dy) {
    while (i + 1 < s->n && s->L[i + 1]->alias) i++;
    return i == s->n - 1 ? (real *)dy : s->grad[i];
}

// Layer i's backward; dx of the first layer is the caller's.
static void seq_backward_one(Seq *s, int i, const real *x, const real *dy, real *dx, int n,
                             Ctx *c) {
    const real *xi = i ? s->out[i - 1] : x;
    real *dxi = i ? grad_at(s, i - 1, dy) : dx;
    int top = seq_top(s, i, c);
    s->L[i]->ops->backward(s->L[i], xi, s->out[top], grad_at(s, top, dy), dxi, n, c);
}

void seq_backward(Seq *s, const real *x, const real *dy, real *dx, int n, Ctx *c) {
    for (int i = s->n - 1; i >= 0; i--)
        if (!seq_skip(s, i, c)) seq_backward_one(s, i, x, dy, dx, n, c);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void seq_profile(Seq *s, const real *x, const real *dy, int n, Ctx *c, double *fwd_ms,
                 double *bwd_ms) {
    const real *in = x;
    for (int i = 0; i < s->n; i++) {
        double t = now_ms();
        if (!seq_skip(s, i, c)) s->L[i]->ops->forward(s->L[i], in, s->out[seq_top(s, i, c)], n, c);
        fwd_ms[i] += now_ms() - t;
        in = s->out[i];
    }
    for (int i = s->n - 1; i >= 0; i--) {
        if (seq_skip(s, i, c)) continue;
        double t = now_ms();
        seq_backward_one(s, i, x, dy, NULL, n, c);
        bwd_ms[i] += now_ms() - t;
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
