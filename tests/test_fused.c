// test_fused.c: the layers a producer fuses into itself (seq.c) against the same layers run one
// by one: a batchnorm's ReLU and, in training, the 2x2 max-pool after it (max-pool codes
// included: the fused output must pick the same winners), and a convolution's ReLU. Each net
// is parsed twice; in the second the fusion flags are cleared before buffers are reserved, so
// every layer runs by itself. Both run the same forward and backward, in training and in
// inference mode; outputs, running statistics, parameter gradients and input gradients must
// agree.
//
// The forward evaluates the same float expressions either way, so outputs must be equal; the
// backward sums in another order (only the windows' winners), so gradients are compared at
// TOL relative to the largest of each array. Built twice: on the float engine (which may use
// the AVX-512 kernels) and on the double one (the generic loops).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "testutil.h"

static const double TOL = 2e-5;

static void unfuse(Seq *s) {
    for (int i = 0; i < s->n; i++) s->L[i]->relu = s->L[i]->alias = s->L[i]->pool = 0;
    for (int i = 0; i < s->n; i++) s->L[i]->pooled = 0;
}

static int count_pooled(const Seq *s) {
    int k = 0;
    for (int i = 0; i < s->n; i++) k += s->L[i]->pooled;
    return k;
}

static double max_abs(const real *a, size_t n) {
    double top = 0;
    for (size_t i = 0; i < n; i++) top = fmax(top, fabs((double)a[i]));
    return top;
}

// max |a - b| over max |b|, or over floor where that is larger (0 when both are 0).
static double rel_diff(const real *a, const real *b, size_t n, double floor) {
    double d = 0, top = fmax(max_abs(b, n), floor);
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return top > 0 ? d / top : d;
}

static void check_net(const char *arch, int n, int want_pooled, Rng *rng) {
    char err[EMO_ERRLEN];
    Net *a = net_parse(arch, "fused", err, sizeof err);
    Net *b = net_parse(arch, "unfused", err, sizeof err);
    CHECK(a && b, "%s", err);
    if (!a || !b) goto out;
    CHECK(count_pooled(a->seq) == want_pooled, "%s: %d fused max-pools, want %d", arch,
          count_pooled(a->seq), want_pooled);
    unfuse(b->seq);
    for (size_t i = 0; i < a->nparams; i++) a->params[i] = b->params[i] = 2 * rng_uniform(rng) - 1;
    memcpy(b->bufs, a->bufs, a->nbufs * sizeof(real));
    CHECK(net_reserve(a, n, 1, err, sizeof err) == 0 && net_reserve(b, n, 1, err, sizeof err) == 0,
          "%s", err);
    long in = shape_size(a->in), out = shape_size(a->out);
    real *x = real_alloc((size_t)n * in), *dy = real_alloc((size_t)n * out);
    real *dxa = real_alloc((size_t)n * in), *dxb = real_alloc((size_t)n * in);
    if (!x || !dy || !dxa || !dxb) {
        CHECK(0, "out of memory");
        goto done;
    }
    for (int train = 1; train >= 0; train--) {
        for (long i = 0; i < n * in; i++) x[i] = 3 * rng_uniform(rng) - 1;
        for (long i = 0; i < n * out; i++) dy[i] = 2 * rng_uniform(rng) - 1;
        // a few exact ties inside pooling windows: equal inputs give equal BN outputs
        for (long i = 0; i + 1 < n * in; i += 7) x[i + 1] = x[i];
        const real *ya = net_forward(a, x, n, train, NULL), *yb = net_forward(b, x, n, train, NULL);
        CHECK(ya && yb, "forward failed");
        if (!ya || !yb) break;
        double dyo = rel_diff(ya, yb, (size_t)n * out, 0);
        CHECK(dyo == 0, "%s, n=%d, train=%d: outputs differ by %g", arch, n, train, dyo);
        double dbuf = rel_diff(a->bufs, b->bufs, a->nbufs, 0);
        CHECK(dbuf == 0, "%s, n=%d, train=%d: running statistics differ by %g", arch, n, train,
              dbuf);
        net_zero_grad(a);
        net_zero_grad(b);
        net_backward(a, x, dy, dxa, n, NULL);
        net_backward(b, x, dy, dxb, n, NULL);
        for (int t = 0; t < a->ntensors; t++) {
            const Tensor *ts = &a->tensors[t];
            if (ts->is_buffer) continue;
            double d = rel_diff(a->grads + ts->off, b->grads + ts->off, ts->count, 0);
            CHECK(d <= TOL, "%s, n=%d, train=%d: gradient of %s differs by %g", arch, n, train,
                  ts->name, d);
        }
        double ddx = rel_diff(dxa, dxb, (size_t)n * in, 0);
        CHECK(ddx <= TOL, "%s, n=%d, train=%d: input gradients differ by %g", arch, n, train, ddx);
    }
done:
    free(x);
    free(dy);
    free(dxa);
    free(dxb);
out:
    net_free(a);
    net_free(b);
}

int main(void) {
    Rng rng;
    rng_seed(&rng, 7);
    static const struct {
        const char *arch;
        int pooled;   // max-pools fused
    } NETS[] = {
        // convolutions before a batchnorm have no bias: its gradient would be 0 in training,
        // up to rounding that no relative bound fits
        {"input c=3 h=8 w=8\nbn\nrelu\nmaxpool k=2", 1},
        {"input c=3 h=8 w=6\nbn\nmaxpool k=2", 1},   // no ReLU between
        {"input c=2 h=8 w=8\nconv out=4 k=3 pad=1 bias=0\nbn\nrelu\nmaxpool k=2\n"
         "conv out=5 k=3 pad=1 bias=0\nbn\nrelu\nmaxpool k=2",
         2},
        {"input c=1 h=24 w=24\nconv out=8 k=3 pad=1 bias=0\nbn\nrelu\nmaxpool k=2\n"
         "conv out=16 k=3 pad=1 bias=0\nbn\nrelu\nmaxpool k=2\n"
         "conv out=16 k=3 pad=1 bias=0\nbn\nrelu\nmaxpool k=2\n"
         "gap\nlinear out=12 bias=0\nbn\nrelu\nlinear out=3",
         3},
        // not fused: odd planes, other windows, a layer in between
        {"input c=2 h=7 w=6\nbn\nrelu\nmaxpool k=2", 0},
        {"input c=2 h=8 w=8\nbn\nrelu\nmaxpool k=3 stride=2 pad=1", 0},
        {"input c=2 h=8 w=8\nbn\nrelu\nrelu\nmaxpool k=2", 0},
        {"input c=2 h=8 w=8\nconv out=3 k=3 pad=1\nrelu\nmaxpool k=2", 0},
    };
    int sizes[] = {1, 3, 16};
    for (size_t i = 0; i < sizeof NETS / sizeof NETS[0]; i++)
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++)
            check_net(NETS[i].arch, sizes[j], NETS[i].pooled, &rng);
    return test_result("test_fused");
}
