// optim.c: SGD (momentum, Nesterov), Adam and AdamW, each one loop over a flat array.
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef EMOCAM_F64
#define SQRT sqrt
#else
#define SQRT sqrtf
#endif

int optim_init(Optim *o, OptKind kind, size_t n) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = 1e-3;
    o->momentum = 0.9;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->decay_all = 1;
    o->n = n;
    o->m = calloc(n ? n : 1, sizeof(real));
    o->v = calloc(n ? n : 1, sizeof(real));
    return o->m && o->v ? 0 : -1;
}

void optim_free(Optim *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

static void sgd(Optim *o, real *p, const real *g, real *buf, size_t n, double wd) {
    real lr = (real)o->lr, mom = (real)o->momentum, w = (real)wd;
    int first = o->step == 1;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        real d = g[i] + w * p[i];
        if (mom != 0) {
            buf[i] = first ? d : mom * buf[i] + d;
            d = o->nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}

static void adam(Optim *o, real *p, const real *g, real *m, real *v, size_t n, double wd) {
    double bc1 = 1 - pow(o->beta1, (double)o->step), bc2 = 1 - pow(o->beta2, (double)o->step);
    real b1 = (real)o->beta1, b2 = (real)o->beta2, step = (real)(o->lr / bc1);
    real sbc2 = (real)sqrt(bc2), eps = (real)o->eps;
    real l2 = o->kind == OPT_ADAM ? (real)wd : 0;
    real shrink = o->kind == OPT_ADAMW ? (real)(1 - o->lr * wd) : 1;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        real d = g[i] + l2 * p[i];
        p[i] *= shrink;
        m[i] = b1 * m[i] + (1 - b1) * d;
        v[i] = b2 * v[i] + (1 - b2) * d * d;
        p[i] -= step * m[i] / (SQRT(v[i]) / sbc2 + eps);
    }
}

void optim_step(Optim *o, Net *net) {
    o->step++;
    for (int t = 0; t < net->ntensors; t++) {
        const Tensor *ts = &net->tensors[t];
        if (ts->is_buffer) continue;
        double wd = o->decay_all || ts->decay ? o->wd : 0;
        real *p = net->params + ts->off;
        const real *g = net->grads + ts->off;
        if (o->kind == OPT_SGD)
            sgd(o, p, g, o->m + ts->off, ts->count, wd);
        else
            adam(o, p, g, o->m + ts->off, o->v + ts->off, ts->count, wd);
    }
}

double clip_grad_norm(Net *net, double max_norm) {
    double ss = 0;
    for (size_t i = 0; i < net->nparams; i++) ss += (double)net->grads[i] * net->grads[i];
    double norm = sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        real s = (real)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < net->nparams; i++) net->grads[i] *= s;
    }
    return norm;
}

const char *optim_name(OptKind k) {
    return k == OPT_SGD ? "sgd" : k == OPT_ADAM ? "adam" : "adamw";
}

int optim_parse(const char *name, OptKind *k) {
    if (strcmp(name, "sgd") == 0) *k = OPT_SGD;
    else if (strcmp(name, "adam") == 0) *k = OPT_ADAM;
    else if (strcmp(name, "adamw") == 0) *k = OPT_ADAMW;
    else return -1;
    return 0;
}
