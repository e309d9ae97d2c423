// optim.h: optimizers over the network's flat parameter array (PyTorch semantics).
#pragma once
#include "model.h"

typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptKind;

typedef struct {
    OptKind kind;
    double lr, momentum, beta1, beta2, eps, wd;
    int nesterov;
    int decay_all;   // 1: weight decay on every parameter (PyTorch); 0: conv/linear weights only
    long step;
    size_t n;
    real *m, *v;     // (n): momentum / first moment, second moment
} Optim;

// Defaults: lr 1e-3, momentum 0.9, betas (0.9, 0.999), eps 1e-8, no decay. 0 or -1 (OOM).
int optim_init(Optim *o, OptKind kind, size_t n);
void optim_free(Optim *o);
void optim_step(Optim *o, Net *net);
// Scale gradients so that their global L2 norm is at most max_norm; returns the norm before.
double clip_grad_norm(Net *net, double max_norm);
const char *optim_name(OptKind k);
int optim_parse(const char *name, OptKind *k);   // "sgd", "adam", "adamw"
