// net.c: a network = the parsed layer chain + one flat array of parameters (and one of their
// gradients, one of running statistics), with named views into them.
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "tfile.h"

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

Net *net_parse(const char *text, const char *file, char *err, size_t errlen) {
    err[0] = 0;
    Builder b = {.file = file, .err = err, .errlen = errlen};
    Net *net = calloc(1, sizeof *net);
    if (!net) {
        snprintf(err, errlen, "%s: out of memory", file);
        return NULL;
    }
    net->dropout = 1;
    net->seq = arch_parse(&b, text, &net->in);
    if (!net->seq) goto fail;
    net->out = seq_out(net->seq);
    net->in_mean = b.in_mean;
    net->in_std = b.in_std;
    net->arch = dupstr(text);
    net->file = dupstr(file);
    net->nparams = b.nparams;
    net->nbufs = b.nbufs;
    net->params = real_alloc(b.nparams);
    net->grads = real_alloc(b.nparams);
    net->bufs = real_alloc(b.nbufs);
    net->tensors = calloc((size_t)b.nslots + 1, sizeof *net->tensors);
    if (!net->arch || !net->file || !net->params || !net->grads || !net->bufs || !net->tensors) {
        snprintf(err, errlen, "%s: out of memory", file);
        goto fail;
    }
    memset(net->grads, 0, b.nparams * sizeof(real));
    for (int i = 0; i < b.nslots; i++) {
        Slot *s = &b.slots[i];
        for (int j = 0; j < i; j++)
            if (strcmp(net->tensors[j].name, s->t.name) == 0) {
                snprintf(err, errlen, "%s: two tensors named %s", file, s->t.name);
                goto fail;
            }
        net->tensors[i] = s->t;
        *s->ptr = (s->t.is_buffer ? net->bufs : net->params) + s->t.off;
        if (s->gptr) *s->gptr = net->grads + s->t.off;
    }
    net->ntensors = b.nslots;
    free(b.slots);
    Rng rng;
    rng_seed(&rng, 0);
    net_init(net, &rng);
    return net;
fail:
    free(b.slots);
    net_free(net);
    return NULL;
}

Net *net_parse_file(const char *path, char *err, size_t errlen) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t len = 0, cap = 4096;
    char *text = malloc(cap);
    while (text) {
        size_t got = fread(text + len, 1, cap - len - 1, fp);
        len += got;
        if (len > (1 << 20)) {   // architecture text is small; refuse anything huge
            free(text);
            fclose(fp);
            snprintf(err, errlen, "%s: larger than 1 MiB, not an architecture", path);
            return NULL;
        }
        if (got == 0) break;
        if (len + 1 == cap) {
            char *t = realloc(text, cap *= 2);
            if (!t) free(text);
            text = t;
        }
    }
    int bad = ferror(fp);
    fclose(fp);
    if (!text || bad) {
        free(text);
        snprintf(err, errlen, "%s: %s", path, bad ? "read error" : "out of memory");
        return NULL;
    }
    text[len] = 0;
    if (strlen(text) != len) {
        free(text);
        snprintf(err, errlen, "%s: holds a NUL byte, not an architecture text", path);
        return NULL;
    }
    Net *net = net_parse(text, path, err, errlen);
    free(text);
    return net;
}

void net_free(Net *net) {
    if (!net) return;
    seq_free(net->seq);
    free(net->arch);
    free(net->file);
    free(net->params);
    free(net->grads);
    free(net->bufs);
    free(net->tensors);
    free(net->ws);
    free(net);
}

void net_scratch_free(NetScratch *s) {
    free(s->act[0]);
    free(s->act[1]);
    free(s->ws);
    *s = (NetScratch){0};
}

// Grow s to act reals a buffer and ws of workspace (contents not kept). 0 or -1 (OOM).
static int scratch_grow(NetScratch *s, size_t act, size_t ws) {
    if (act > s->act_len) {
        for (int k = 0; k < 2; k++) {
            free(s->act[k]);
            s->act[k] = real_alloc(act);
        }
        s->act_len = s->act[0] && s->act[1] ? act : 0;
        if (!s->act_len) return -1;
    }
    if (ws > s->ws_len) {
        free(s->ws);
        s->ws = real_alloc(ws);
        s->ws_len = s->ws ? ws : 0;
        if (!s->ws) return -1;
    }
    return 0;
}

int net_reserve(Net *net, int nmax, int with_grads, char *err, size_t errlen) {
    int shared = net->scratch && !with_grads;
    size_t act = 0;
    long ws = shared ? seq_reserve_shared(net->seq, nmax, &act) : seq_reserve(net->seq, nmax, with_grads);
    free(net->ws);
    net->ws = NULL;
    net->ws_len = 0;
    if (ws >= 0 && !shared) net->ws = real_alloc((size_t)ws);
    if (ws < 0 || (shared ? scratch_grow(net->scratch, act, (size_t)ws) : !net->ws)) {
        net->nmax = 0;
        snprintf(err, errlen, "%s: out of memory for a batch of %d", net->file, nmax);
        return -1;
    }
    net->ws_len = (size_t)ws;
    net->nmax = nmax;
    net->threads = omp_get_max_threads();
    net->grads_on = with_grads;
    return 0;
}

int net_use_scratch(Net *net, NetScratch *s, char *err, size_t errlen) {
    if (s && !net->folded) {
        snprintf(err, errlen, "%s: only a folded network can share scratch buffers", net->file);
        return -1;
    }
    net->scratch = s;
    return net->nmax ? net_reserve(net, net->nmax, 0, err, errlen) : 0;
}

void net_init(Net *net, Rng *rng) { seq_init(net->seq, rng); }

void net_preprocess(const Net *net, const uint8_t *pixels, int n, real *x) {
    long len = n * shape_size(net->in);
    real mean = net->in_mean, inv = 1 / net->in_std;
    for (long i = 0; i < len; i++) x[i] = ((real)pixels[i] - mean) * inv;
}

// Whether the net runs on its shared scratch now (net_use_scratch; not when reserved to train).
static int on_scratch(const Net *net) { return net->scratch && !net->grads_on; }

static Ctx make_ctx(Net *net, int train, Rng *rng) {
    real *ws = on_scratch(net) ? net->scratch->ws : net->ws;
    return (Ctx){train, train && net->dropout, rng, ws, net->ws_len, net->folded};
}

const real *net_forward(Net *net, const real *x, int n, int train, Rng *rng) {
    // workspaces are sized per thread: re-reserve when the thread count has changed
    if (n > net->nmax || (train && !net->grads_on) || omp_get_max_threads() != net->threads) {
        char err[EMO_ERRLEN];
        if (net_reserve(net, n > net->nmax ? n : net->nmax, train || net->grads_on, err,
                        sizeof err))
            return NULL;
    }
    if (on_scratch(net)) seq_bind(net->seq, net->scratch->act);
    Ctx c = make_ctx(net, train, rng);
    net->last_train = train;
    return seq_forward(net->seq, x, n, &c);
}

void net_profile(Net *net, const real *x, const real *dy, int n, Rng *rng, double *fwd_ms,
                 double *bwd_ms) {
    net_forward(net, x, n, 1, rng);   // reserves what training needs, like a real step
    Ctx c = make_ctx(net, 1, rng);
    seq_profile(net->seq, x, dy, n, &c, fwd_ms, bwd_ms);
}

void net_backward(Net *net, const real *x, const real *dy, real *dx, int n, Rng *rng) {
    if (net->folded) return;
    Ctx c = make_ctx(net, net->last_train, rng);
    seq_backward(net->seq, x, dy, dx, n, &c);
}

int net_nlayers(const Net *net) { return net->seq->n; }

double net_layer_flops(const Net *net, int i) {
    if (i < 0 || i >= net->seq->n) return 0;
    const Layer *l = net->seq->L[i];
    return l->ops->flops ? l->ops->flops(l) : 0;
}

const char *net_layer_info(const Net *net, int i, Shape *out) {
    if (i < 0 || i >= net->seq->n) return NULL;
    if (out) *out = net->seq->L[i]->out;
    return net->seq->L[i]->name;
}

const real *net_layer_output(const Net *net, int i) {
    return i >= 0 && i < net->seq->n && net->seq->out ? net->seq->out[i] : NULL;
}

// dLoss/d(output of top-level layer i) after net_backward; NULL for the last layer (that is
// the caller's dy) or when gradients were not reserved.
const real *net_layer_grad(const Net *net, int i) {
    const Seq *s = net->seq;
    if (i < 0 || i + 1 >= s->n || !s->grad) return NULL;
    while (i + 1 < s->n && s->L[i + 1]->alias) i++;
    return i + 1 < s->n ? s->grad[i] : NULL;
}

void net_zero_grad(Net *net) { memset(net->grads, 0, net->nparams * sizeof(real)); }

const Tensor *net_tensor(const Net *net, const char *name) {
    for (int i = 0; i < net->ntensors; i++)
        if (strcmp(net->tensors[i].name, name) == 0) return &net->tensors[i];
    return NULL;
}

real *net_tensor_data(Net *net, const Tensor *t) {
    return (t->is_buffer ? net->bufs : net->params) + t->off;
}

size_t net_count_params(const Net *net) { return net->nparams; }

double net_flops(const Net *net) { return seq_flops(net->seq); }

// Every batchnorm of a chain (and of the chains inside its blocks), in order: the k-th one's
// momentum is read into get[k] (get not NULL), then set to set[k] (set not NULL) or to one
// value (set NULL, one >= 0). Returns the number of batchnorms.
static int bn_momenta(Seq *s, real *get, const real *set, real one, int k) {
    for (int i = 0; i < s->n; i++) {
        Seq *main, *sc;
        if (residual_seqs(s->L[i], &main, &sc) == 0) {
            k = bn_momenta(main, get, set, one, k);
            k = bn_momenta(sc, get, set, one, k);
        } else if (bn_momentum(s->L[i], get ? &get[k] : NULL, set ? set[k] : one) == 0) {
            k++;
        }
    }
    return k;
}

int net_bn_update(Net *net, const real *x, int n, int batch, Rng *rng, char *err, size_t errlen) {
    if (net->folded) {
        snprintf(err, errlen, "%s: a batchnorm-folded network keeps no statistics", net->file);
        return -1;
    }
    int nbn = bn_momenta(net->seq, NULL, NULL, -1, 0);
    real *old = real_alloc((size_t)nbn + 1);
    if (!old) {
        snprintf(err, errlen, "%s: out of memory", net->file);
        return -1;
    }
    bn_momenta(net->seq, old, NULL, -1, 0);
    int dropout = net->dropout, rc = 0;
    net->dropout = rng != NULL;
    long in = shape_size(net->in);
    for (int i = 0, b = 0; i < n; i += batch, b++) {
        int m = n - i < batch ? n - i : batch;
        bn_momenta(net->seq, NULL, NULL, (real)(1.0 / (b + 1)), 0);   // running = batches' mean
        if (!net_forward(net, x + (size_t)i * in, m, 1, rng)) {
            snprintf(err, errlen, "%s: out of memory for a batch of %d", net->file, m);
            rc = -1;
            break;
        }
    }
    bn_momenta(net->seq, NULL, old, -1, 0);
    net->dropout = dropout;
    free(old);
    return rc;
}

// Fold conv/linear + bn pairs of one chain (and of the chains inside its blocks).
static int fold_seq(Seq *s) {
    for (int i = 0; i < s->n; i++) {
        Seq *m, *sc;
        if (residual_seqs(s->L[i], &m, &sc) == 0) {
            if (fold_seq(m) || fold_seq(sc)) return -1;
            continue;
        }
        if (i + 1 >= s->n) continue;
        Layer *l = s->L[i], *bn = s->L[i + 1];
        real *scale = real_alloc((size_t)bn->in.c), *shift = real_alloc((size_t)bn->in.c);
        int ok = scale && shift && bn_affine(bn, scale, shift) == 0 &&
                 (conv_fold(l, scale, shift) == 0 || linear_fold(l, scale, shift) == 0);
        free(scale);
        free(shift);
        if (!ok) continue;
        l->relu = bn->relu;   // the folded layer takes over a ReLU fused into the bn
        for (int j = i + 2; bn->pool && j < s->n; j++)   // but not a max-pool (seq.c)
            if (s->L[j]->pooled) {
                s->L[j]->pooled = 0;
                break;
            }
        layer_free(bn);
        if (s->out && !s->borrowed) free(s->out[i + 1]);
        if (s->grad) free(s->grad[i + 1]);
        for (int j = i + 1; j + 1 < s->n; j++) {
            s->L[j] = s->L[j + 1];
            if (s->out) s->out[j] = s->out[j + 1];
            if (s->grad) s->grad[j] = s->grad[j + 1];
        }
        s->n--;
    }
    return 0;
}

// Freeze every conv and linear layer of a chain (and of its blocks) once its weights are final.
static void freeze_seq(Seq *s) {
    for (int i = 0; i < s->n; i++) {
        Seq *m, *sc;
        if (residual_seqs(s->L[i], &m, &sc) == 0) {
            freeze_seq(m);
            freeze_seq(sc);
        } else {
            // not a conv or linear, or out of memory: they lay weights out per call
            if (conv_freeze(s->L[i])) linear_freeze(s->L[i]);
        }
    }
}

void net_fold_bn(Net *net) {
    fold_seq(net->seq);
    freeze_seq(net->seq);
    net->folded = 1;
    if (net->nmax) {
        char err[EMO_ERRLEN];
        net_reserve(net, net->nmax, 0, err, sizeof err);
    }
}

int net_save_as(const Net *net, const char *path, int f16, char *err, size_t errlen) {
    if (net->folded) {
        snprintf(err, errlen, "%s: a batchnorm-folded network cannot be saved", path);
        return -1;
    }
    TOut *t = calloc((size_t)net->ntensors + 1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (int i = 0; i < net->ntensors; i++) {
        const Tensor *s = &net->tensors[i];
        t[i] = (TOut){s->name, s->ndim, s->dims,
                      (s->is_buffer ? net->bufs : net->params) + s->off, f16};
    }
    int rc = tfile_write(path, "WGHT", net->arch, strlen(net->arch), t, net->ntensors, err, errlen);
    free(t);
    return rc;
}

int net_save(const Net *net, const char *path, char *err, size_t errlen) {
    return net_save_as(net, path, 0, err, errlen);
}

static void dims_str(char *buf, size_t len, int ndim, const int *dims) {
    size_t pos = 0;
    buf[0] = 0;
    for (int d = 0; d < ndim && pos < len; d++)
        pos += (size_t)snprintf(buf + pos, len - pos, d ? "x%d" : "%d", dims[d]);
}

Net *net_load(const char *path, char *err, size_t errlen) {
    TFile f;
    if (tfile_read(path, "WGHT", &f, err, errlen)) return NULL;
    Net *net = net_parse(f.meta, path, err, errlen);
    if (!net) {
        tfile_free(&f);
        return NULL;
    }
    if (f.n != net->ntensors) {
        snprintf(err, errlen, "%s: holds %d tensors, its architecture has %d", path, f.n,
                 net->ntensors);
        goto fail;
    }
    for (int i = 0; i < f.n; i++) {
        const TEntry *e = &f.t[i];
        const Tensor *t = &net->tensors[i];
        if (strcmp(e->name, t->name) != 0) {
            snprintf(err, errlen, "%s: tensor %d is %s, the architecture expects %s", path, i,
                     e->name, t->name);
            goto fail;
        }
        int same = e->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = e->dims[d] == t->dims[d];
        if (!same) {
            char a[64], b[64];
            dims_str(a, sizeof a, e->ndim, e->dims);
            dims_str(b, sizeof b, t->ndim, t->dims);
            snprintf(err, errlen, "%s: tensor %s has shape %s, the architecture expects %s",
                     path, e->name, a, b);
            goto fail;
        }
        tentry_get(e, net_tensor_data(net, t));
    }
    tfile_free(&f);
    return net;
fail:
    tfile_free(&f);
    net_free(net);
    return NULL;
}
