// test_torch_ref.c: the engine against PyTorch, forward and backward, for every layer kind, the
// seed architectures, the loss and the optimizers. The reference files tests/ref/*.tref were
// made by tests/ref/make_refs.py (which describes what each holds); torch is not needed here.
//
// Every comparison is one number per tensor, its relative error
//     max_i |a_i - b_i| / max(max_i |b_i|, 1e-6)       a: emocam, b: PyTorch
// (PyTorch computed in float64, stored as float32). A sum of a sampled gradient is compared
// against the sum of its absolute values instead: |sum a - sum b| / max(sum |b|, 1e-6). The
// gradient of a bias followed by batchnorm in training mode is zero in exact arithmetic, and
// both sides hold rounding noise there: it is measured against S instead of max|b|, S being
// the size of the terms that cancel (gscale.NAME, see make_refs.py).
// Tolerances for the float32 engine: forward values (outputs, running statistics, eval-mode and
// batchnorm-folded outputs, loss, probabilities) 1e-4; gradients (dx, parameter gradients,
// dlogits) and optimizer updates (parameter after step s minus before) 1e-3. Built against the
// double-precision engine (test_torch_ref_f64) both are 1e-6, just above the float32 rounding
// of the stored references, so that any difference in the semantics shows.
//
// Usage: test_torch_ref [FILE.tref ...]    (default: every tests/ref/*.tref)
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "optim.h"
#include "refinit.h"
#include "testutil.h"
#include "tfile.h"

#ifdef EMOCAM_F64
static const double TOL_FWD = 1e-6, TOL_GRAD = 1e-6;
#else
static const double TOL_FWD = 1e-4, TOL_GRAD = 1e-3;
#endif

// The largest error of one kind of comparison within a case, and where it was.
typedef struct {
    double err;
    char where[112];
} Worst;

typedef struct {
    const char *name;   // the case
    int failures;
} Case;

static void note(Worst *w, double err, const char *where) {
    if (!(err <= w->err) || !w->where[0]) {   // NaN sticks
        w->err = err;
        snprintf(w->where, sizeof w->where, "%s", where);
    }
}

static real *alloc_reals(size_t n) {
    real *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "test_torch_ref: out of memory\n");
        exit(1);
    }
    return p;
}

static real *entry_reals(const TEntry *e) {
    real *p = alloc_reals(e->count);
    tentry_get(e, p);
    return p;
}

static const TEntry *need(Case *c, const TFile *f, const char *name) {
    const TEntry *e = tfile_find(f, name);
    CHECK(e, "%s: the reference has no tensor %s", c->name, name);
    if (!e) c->failures++;
    return e;
}

// Compare n values a against the reference entry; returns the relative error (or INFINITY when
// the sizes differ), and fails the case above tol, with the worst element.
static double compare_floor(Case *c, const char *what, const real *a, size_t n,
                            const TEntry *e, double tol, double floor) {
    if (!e) return INFINITY;
    if (e->count != n) {
        CHECK(e->count == n, "%s: %s has %zu values, the reference %zu", c->name, what, n,
              e->count);
        c->failures++;
        return INFINITY;
    }
    real *b = entry_reals(e);
    double maxb = 0, maxd = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (fabs((double)b[i]) > maxb) maxb = fabs((double)b[i]);
        if (!(d <= maxd)) {
            maxd = d;
            at = i;
            if (isnan(d)) break;
        }
    }
    double err = maxd / fmax(maxb, floor);
    CHECK(err <= tol,
          "%s: %s: relative error %.3g > %.0e (max|a-b| %.3g at element %zu: emocam %.8g, "
          "torch %.8g; max|torch| %.3g)",
          c->name, what, err, tol, maxd, at, (double)a[at], (double)b[at], maxb);
    if (!(err <= tol)) c->failures++;
    free(b);
    return err;
}

static double compare(Case *c, const char *what, const real *a, size_t n, const TEntry *e,
                      double tol) {
    return compare_floor(c, what, a, n, e, tol, 1e-6);
}

// The value of key= on the meta's first line ("# emocam-ref type=net case=... key=value").
static int meta_get(const char *meta, const char *key, char *out, size_t len) {
    size_t kl = strlen(key);
    const char *end = strchr(meta, '\n');
    if (!end) end = meta + strlen(meta);
    for (const char *p = meta; p < end; p++) {
        if ((p == meta || p[-1] == ' ') && (size_t)(end - p) > kl && !strncmp(p, key, kl) &&
            p[kl] == '=') {
            const char *v = p + kl + 1, *ve = v;
            while (ve < end && *ve != ' ') ve++;
            snprintf(out, len, "%.*s", (int)(ve - v), v);
            return 0;
        }
    }
    return -1;
}

static double meta_num(Case *c, const char *meta, const char *key) {
    char buf[64];
    char *e;
    if (meta_get(meta, key, buf, sizeof buf)) {
        CHECK(0, "%s: the reference's first line has no %s=", c->name, key);
        c->failures++;
        return 0;
    }
    double v = strtod(buf, &e);
    CHECK(*e == 0 && e != buf, "%s: bad %s=%s", c->name, key, buf);
    return v;
}

// The sampling of make_refs.py: the smallest stride >= ceil(count / 1024) coprime with 210.
static size_t sample_stride(size_t count) {
    size_t s = (count + 1023) / 1024;
    while (s % 2 == 0 || s % 3 == 0 || s % 5 == 0 || s % 7 == 0) s++;
    return s;
}

// A parameter's gradient g (count values) against grad.NAME, or gsample.NAME + gsum.NAME.
static double compare_grad(Case *c, const TFile *f, const Tensor *t, const real *g) {
    char key[128];
    snprintf(key, sizeof key, "gscale.%s", t->name);
    const TEntry *esc = tfile_find(f, key);
    double floor = 1e-6;
    if (esc && esc->count == 1) {
        real s;
        tentry_get(esc, &s);
        floor = fmax(floor, (double)s);
    }
    snprintf(key, sizeof key, "grad.%s", t->name);
    const TEntry *e = tfile_find(f, key);
    if (e) return compare_floor(c, key, g, t->count, e, TOL_GRAD, floor);
    snprintf(key, sizeof key, "gsample.%s", t->name);
    const TEntry *es = need(c, f, key);
    char skey[128];
    snprintf(skey, sizeof skey, "gsum.%s", t->name);
    const TEntry *esum = need(c, f, skey);
    if (!es || !esum || esum->count != 2) return INFINITY;
    size_t stride = sample_stride(t->count), ns = (t->count + stride - 1) / stride;
    real *s = alloc_reals(ns);
    for (size_t i = 0; i < ns; i++) s[i] = g[i * stride];
    double err = compare_floor(c, key, s, ns, es, TOL_GRAD, floor);
    free(s);
    real ref[2];
    tentry_get(esum, ref);
    double sum = 0, sabs = 0;
    for (size_t i = 0; i < t->count; i++) {
        sum += g[i];
        sabs += fabs((double)g[i]);
    }
    double scale = fabs((double)ref[1]) > 1e-6 ? fabs((double)ref[1]) : 1e-6;
    double e1 = fabs(sum - ref[0]) / scale, e2 = fabs(sabs - ref[1]) / scale;
    CHECK(e1 <= TOL_GRAD && e2 <= TOL_GRAD,
          "%s: %s: sum %.8g (torch %.8g), sum|g| %.8g (torch %.8g): relative errors %.3g, %.3g "
          "> %.0e",
          c->name, skey, sum, (double)ref[0], sabs, (double)ref[1], e1, e2, TOL_GRAD);
    if (!(e1 <= TOL_GRAD && e2 <= TOL_GRAD)) c->failures++;
    return fmax(err, fmax(e1, e2));
}

static void print_worst(const char *label, const Worst *w) {
    if (w->where[0]) printf("  %s %.2e (%s)", label, w->err, w->where);
}

// type=net: training forward (dropout off), backward, running statistics, eval, folded eval.
static void run_net(Case *c, const char *path, const TFile *f) {
    char err[EMO_ERRLEN];
    Net *net = net_parse(f->meta, path, err, sizeof err);
    CHECK(net, "%s: %s", c->name, err);
    if (!net) return;
    int ok = refinit_net(net, err, sizeof err) == 0;
    CHECK(ok, "%s: %s", c->name, err);
    const TEntry *ex = need(c, f, "x"), *edy = need(c, f, "dy");
    long in = shape_size(net->in), out = shape_size(net->out);
    int n = ex ? (int)ex->dims[0] : 0;
    if (!ok || !ex || !edy || ex->ndim != 4 || ex->count != (size_t)n * in ||
        edy->count != (size_t)n * out || net_reserve(net, n, 1, err, sizeof err)) {
        CHECK(0, "%s: x or dy does not fit the network (or: %s)", c->name, err);
        net_free(net);
        return;
    }
    real *x = entry_reals(ex), *dy = entry_reals(edy), *dx = alloc_reals((size_t)n * in);
    Rng rng;
    rng_seed(&rng, 1);
    net->dropout = 0;
    Worst wy = {0}, wdx = {0}, wg = {0}, wb = {0}, we = {0}, wf = {0};

    const real *y = net_forward(net, x, n, 1, &rng);
    CHECK(y, "%s: net_forward failed", c->name);
    if (y) note(&wy, compare(c, "y", y, (size_t)n * out, need(c, f, "y"), TOL_FWD), "y");
    net_backward(net, x, dy, dx, n, &rng);
    note(&wdx, compare(c, "dx", dx, (size_t)n * in, need(c, f, "dx"), TOL_GRAD), "dx");

    // The file lists grad/gsample/buf entries in its own (emonet.py's) tensor order: it must be
    // emocam's, name for name.
    int k = 0;
    for (int i = 0; i < f->n; i++) {
        const char *nm = f->t[i].name, *dot = strchr(nm, '.');
        if (!dot || !(strncmp(nm, "grad.", 5) == 0 || strncmp(nm, "gsample.", 8) == 0 ||
                      strncmp(nm, "buf.", 4) == 0))
            continue;
        int same = k < net->ntensors && strcmp(dot + 1, net->tensors[k].name) == 0;
        CHECK(same, "%s: PyTorch's tensor %d is %s, emocam's is %s", c->name, k, dot + 1,
              k < net->ntensors ? net->tensors[k].name : "(none)");
        if (!same) c->failures++;
        k++;
    }
    CHECK(k == net->ntensors, "%s: PyTorch has %d tensors, emocam %d", c->name, k, net->ntensors);

    for (int t = 0; t < net->ntensors; t++) {
        const Tensor *ts = &net->tensors[t];
        char key[128];
        if (ts->is_buffer) {
            snprintf(key, sizeof key, "buf.%s", ts->name);
            note(&wb, compare(c, key, net_tensor_data(net, ts), ts->count, need(c, f, key),
                              TOL_FWD), ts->name);
        } else {
            note(&wg, compare_grad(c, f, ts, net->grads + ts->off), ts->name);
        }
    }

    const TEntry *eev = need(c, f, "y_eval");
    y = net_forward(net, x, n, 0, &rng);
    if (y) note(&we, compare(c, "y_eval", y, (size_t)n * out, eev, TOL_FWD), "y_eval");
    net_fold_bn(net);
    y = net_forward(net, x, n, 0, &rng);
    CHECK(y, "%s: net_forward failed after net_fold_bn", c->name);
    if (y) note(&wf, compare(c, "y_eval (batchnorm folded)", y, (size_t)n * out, eev, TOL_FWD),
                "folded");

    printf("%-30s", c->name);
    print_worst("y", &wy);
    print_worst("dx", &wdx);
    print_worst("grad", &wg);
    print_worst("buf", &wb);
    print_worst("eval", &we);
    print_worst("fold", &wf);
    printf("\n");
    free(x);
    free(dy);
    free(dx);
    net_free(net);
}

// type=xent: softmax cross-entropy with class weights and label smoothing, or (a case with
// targets instead of labels) with a target distribution per sample.
static void run_xent(Case *c, const TFile *f) {
    const TEntry *ez = need(c, f, "logits"), *eq = tfile_find(f, "targets");
    const TEntry *el = eq ? NULL : need(c, f, "labels"), *ecw = tfile_find(f, "cw");
    if (!ez || ez->ndim != 2 || (eq ? eq->count != ez->count : !el || el->count != (size_t)ez->dims[0])) {
        CHECK(0, "%s: bad logits/labels/targets", c->name);
        return;
    }
    int n = ez->dims[0], k = ez->dims[1];
    real *z = entry_reals(ez), *lab = el ? entry_reals(el) : entry_reals(eq);
    real *cw = ecw ? entry_reals(ecw) : NULL;
    real *probs = alloc_reals((size_t)n * k), *dl = alloc_reals((size_t)n * k);
    real *sm = alloc_reals((size_t)n * k);
    int *labels = calloc((size_t)n, sizeof *labels);
    if (!labels) exit(1);
    double loss;
    if (eq) {
        loss = softmax_xent_probs(z, lab, n, k, cw, probs, dl);
    } else {
        for (int i = 0; i < n; i++) labels[i] = (int)lab[i];
        loss = softmax_xent(z, labels, n, k, cw, (real)meta_num(c, f->meta, "eps"), probs, dl);
    }
    softmax(z, n, k, sm);
    real l = (real)loss;
    Worst wl = {0}, wp = {0}, wd = {0};
    note(&wl, compare(c, "loss", &l, 1, need(c, f, "loss"), TOL_FWD), "loss");
    note(&wp, compare(c, "probs", probs, (size_t)n * k, need(c, f, "probs"), TOL_FWD), "probs");
    note(&wp, compare(c, "softmax", sm, (size_t)n * k, need(c, f, "probs"), TOL_FWD), "softmax");
    note(&wd, compare(c, "dlogits", dl, (size_t)n * k, need(c, f, "dlogits"), TOL_GRAD),
         "dlogits");
    printf("%-30s", c->name);
    print_worst("loss", &wl);
    print_worst("probs", &wp);
    print_worst("dlogits", &wd);
    printf("\n");
    free(z);
    free(lab);
    free(cw);
    free(probs);
    free(dl);
    free(sm);
    free(labels);
}

// type=optim: `steps` steps of one optimizer from the hash-initialised parameters with hashed
// gradients; the change of every parameter after each step against torch.optim.
static void run_optim(Case *c, const char *path, const TFile *f) {
    char err[EMO_ERRLEN], kind[16];
    Net *net = net_parse(f->meta, path, err, sizeof err);
    CHECK(net, "%s: %s", c->name, err);
    if (!net) return;
    OptKind ok;
    Optim o;
    int good = refinit_net(net, err, sizeof err) == 0 && meta_get(f->meta, "opt", kind, sizeof kind) == 0 &&
               optim_parse(kind, &ok) == 0 && optim_init(&o, ok, net->nparams) == 0;
    CHECK(good, "%s: cannot set up the optimizer (%s)", c->name, err);
    if (!good) {
        net_free(net);
        return;
    }
    o.lr = meta_num(c, f->meta, "lr");
    o.momentum = meta_num(c, f->meta, "momentum");
    o.nesterov = (int)meta_num(c, f->meta, "nesterov");
    o.beta1 = meta_num(c, f->meta, "beta1");
    o.beta2 = meta_num(c, f->meta, "beta2");
    o.eps = meta_num(c, f->meta, "eps");
    o.wd = meta_num(c, f->meta, "wd");
    o.decay_all = (int)meta_num(c, f->meta, "decay_all");
    int steps = (int)meta_num(c, f->meta, "steps");
    real *p0 = alloc_reals(net->nparams), *d = alloc_reals(net->nparams);
    memcpy(p0, net->params, net->nparams * sizeof(real));
    Worst w = {0};
    for (int s = 1; s <= steps; s++) {
        for (int t = 0; t < net->ntensors; t++) {
            const Tensor *ts = &net->tensors[t];
            if (ts->is_buffer) continue;
            for (size_t i = 0; i < ts->count; i++)
                net->grads[ts->off + i] =
                    (real)(float)(0.5 * refinit_uniform((uint32_t)(65536 * s + t), (uint32_t)i));
        }
        optim_step(&o, net);
        for (size_t i = 0; i < net->nparams; i++) d[i] = net->params[i] - p0[i];
        for (int t = 0; t < net->ntensors; t++) {
            const Tensor *ts = &net->tensors[t];
            if (ts->is_buffer) continue;
            char key[128];
            snprintf(key, sizeof key, "d%d.%s", s, ts->name);
            note(&w, compare(c, key, d + ts->off, ts->count, need(c, f, key), TOL_GRAD), key);
        }
    }
    printf("%-30s", c->name);
    print_worst("update", &w);
    printf("\n");
    optim_free(&o);
    free(p0);
    free(d);
    net_free(net);
}

static void run_file(const char *path) {
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char name[128];
    snprintf(name, sizeof name, "%s", base);
    char *dot = strstr(name, ".tref");
    if (dot) *dot = 0;
    Case c = {name, 0};
    TFile f;
    char err[EMO_ERRLEN], type[16];
    if (tfile_read(path, "TREF", &f, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    if (meta_get(f.meta, "type", type, sizeof type) || strncmp(f.meta, "# emocam-ref ", 13)) {
        CHECK(0, "%s: the meta text does not start with '# emocam-ref type=...'", path);
    } else if (strcmp(type, "net") == 0) {
        run_net(&c, path, &f);
    } else if (strcmp(type, "xent") == 0) {
        run_xent(&c, &f);
    } else if (strcmp(type, "optim") == 0) {
        run_optim(&c, path, &f);
    } else {
        CHECK(0, "%s: unknown reference type '%s'", path, type);
    }
    if (c.failures) printf("%-30s FAILED (%d comparisons)\n", name, c.failures);
    tfile_free(&f);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
#ifdef EMOCAM_F64
    const char *test = "test_torch_ref_f64";
#else
    const char *test = "test_torch_ref";
#endif
    setvbuf(stdout, NULL, _IOLBF, 0);   // keep the report in step with the CHECK messages
    printf("relative error = max|emocam - torch| / max|torch|; tolerances: forward %.0e, "
           "gradients %.0e\n", TOL_FWD, TOL_GRAD);
    if (argc > 1) {
        for (int i = 1; i < argc; i++) run_file(argv[i]);
        return test_result(test);
    }
    const char *dir = EMOCAM_SOURCE_DIR "/tests/ref";
    DIR *d = opendir(dir);
    CHECK(d, "%s: cannot open the reference folder", dir);
    if (!d) return test_result(test);
    char **names = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".tref") != 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) return 1;
            names = nn;
        }
        size_t pl = strlen(dir) + len + 2;
        if (!(names[n] = malloc(pl))) return 1;
        snprintf(names[n++], pl, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    CHECK(n > 0, "%s: no .tref files (run tests/ref/make_refs.py)", dir);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        run_file(names[i]);
        free(names[i]);
    }
    free(names);
    printf("%d reference files\n", n);
    return test_result(test);
}
