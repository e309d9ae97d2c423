// test_fold.c: net_fold_bn on each architecture in assets/models gives the eval-mode output of
// the unfolded net, for a batch of 1 and a batch of 5.
//
// Parameters come from net_init with a seed; batchnorm gamma and beta are moved away from 1
// and 0, and a few training forwards make the running statistics non-trivial. The error is
// measured against the largest output: max |folded - unfolded| <= 1e-4 * max |unfolded|.
//
// Also net_bn_update (the statistics after weight averaging), on a residual net whose
// batchnorms sit inside a block and behind a dropout: each running mean and variance is the
// plain mean over the batches of the batch's mean and unbiased variance, computed here by
// hand; dropout is off unless an Rng is given; the momenta are back afterwards; parameters
// are untouched; a folded net is refused.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "testutil.h"

static const double TOL = 1e-4;

// Layers of a kind in a chain and the chains of its blocks.
static int count_kind(Seq *s, const char *kind) {
    int n = 0;
    for (int i = 0; i < s->n; i++) {
        Seq *m, *sc;
        if (strcmp(s->L[i]->ops->kind, kind) == 0) n++;
        if (residual_seqs(s->L[i], &m, &sc) == 0) n += count_kind(m, kind) + count_kind(sc, kind);
    }
    return n;
}

static void check_arch(const char *file) {
    char path[1024], err[EMO_ERRLEN];
    snprintf(path, sizeof path, "%s/assets/models/%s", EMOCAM_SOURCE_DIR, file);
    Net *net = net_parse_file(path, err, sizeof err);
    CHECK(net != NULL, "%s", err);
    if (!net) return;
    Rng rng;
    rng_seed(&rng, 17);
    net_init(net, &rng);
    for (int t = 0; t < net->ntensors; t++) {
        const Tensor *tt = &net->tensors[t];
        real *d = net_tensor_data(net, tt);
        if (strstr(tt->name, ".gamma"))
            for (size_t i = 0; i < tt->count; i++) d[i] = (real)(0.6 + 0.8 * rng_uniform(&rng));
        if (strstr(tt->name, ".beta"))
            for (size_t i = 0; i < tt->count; i++) d[i] = (real)(0.4 * rng_uniform(&rng) - 0.2);
    }
    enum { N = 5 };
    long size = shape_size(net->in), osize = shape_size(net->out);
    real *x = malloc((size_t)N * size * sizeof *x);
    real *ref = malloc((size_t)N * osize * sizeof *ref);
    real *ref1 = malloc((size_t)osize * sizeof *ref1);
    if (!x || !ref || !ref1) goto done;
    // training forwards on inputs with a mean and spread unlike N(0,1)
    for (int it = 0; it < 4; it++) {
        for (long i = 0; i < N * size; i++) x[i] = (real)(0.5 + 1.5 * rng_uniform(&rng));
        CHECK(net_forward(net, x, N, 1, &rng) != NULL, "%s: training forward failed", file);
    }
    int moved = 0;
    for (int t = 0; t < net->ntensors; t++) {
        const Tensor *tt = &net->tensors[t];
        const real *d = net_tensor_data(net, tt);
        if (strstr(tt->name, "running_mean"))
            for (size_t i = 0; i < tt->count; i++) moved += fabs(d[i]) > 1e-3;
        if (strstr(tt->name, "running_var"))
            for (size_t i = 0; i < tt->count; i++) moved += fabs(d[i] - 1) > 1e-3;
    }
    int nbn = count_kind(net->seq, "bn");
    CHECK(nbn == 0 || moved > 0, "%s: running statistics did not move", file);

    // the unfolded eval outputs
    for (long i = 0; i < N * size; i++) x[i] = (real)(2 * rng_uniform(&rng) - 0.5);
    const real *y = net_forward(net, x, N, 0, NULL);
    CHECK(y != NULL, "%s: forward failed", file);
    if (!y) goto done;
    memcpy(ref, y, (size_t)N * osize * sizeof *ref);
    y = net_forward(net, x + 2 * size, 1, 0, NULL);   // sample 2 alone
    CHECK(y != NULL, "%s: forward failed", file);
    if (!y) goto done;
    memcpy(ref1, y, (size_t)osize * sizeof *ref1);

    net_fold_bn(net);
    CHECK(net->folded == 1, "%s: not marked folded", file);
    CHECK(count_kind(net->seq, "bn") == 0, "%s: %d of %d batchnorms left after folding", file,
          count_kind(net->seq, "bn"), nbn);

    double worst = 0, scale = 0;
    for (long i = 0; i < N * osize; i++) scale = fmax(scale, fabs(ref[i]));
    y = net_forward(net, x, N, 0, NULL);
    CHECK(y != NULL, "%s: folded forward failed", file);
    for (long i = 0; y && i < N * osize; i++) worst = fmax(worst, fabs(y[i] - ref[i]));
    CHECK(worst <= TOL * scale, "%s, batch of %d: folded differs by %.3g (outputs up to %.3g)",
          file, N, worst, scale);
    double worst1 = 0, scale1 = 0;
    for (long i = 0; i < osize; i++) scale1 = fmax(scale1, fabs(ref1[i]));
    y = net_forward(net, x + 2 * size, 1, 0, NULL);
    CHECK(y != NULL, "%s: folded forward failed", file);
    for (long i = 0; y && i < osize; i++) worst1 = fmax(worst1, fabs(y[i] - ref1[i]));
    CHECK(worst1 <= TOL * scale1, "%s, batch of 1: folded differs by %.3g (outputs up to %.3g)",
          file, worst1, scale1);
    // batch of 1 and batch of 5 agree on the same sample
    double cross = 0;
    for (long i = 0; i < osize; i++) cross = fmax(cross, fabs(ref1[i] - ref[2 * osize + i]));
    CHECK(cross <= TOL * scale1, "%s: sample 2 alone differs from it in a batch by %.3g", file,
          cross);
    printf("%-20s %d batchnorms folded; max error %.2e (batch 5), %.2e (batch 1) of outputs up "
           "to %.2f\n",
           file, nbn, worst / scale, worst1 / scale1, scale);
done:
    free(x);
    free(ref);
    free(ref1);
    net_free(net);
}

// Per-channel mean and unbiased variance over n samples of (C, HW) planes, in double.
static void plane_stats(const real *x, int n, int C, int hw, int ch, double *mean, double *var) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < hw; k++) s += x[((size_t)i * C + ch) * hw + k];
    *mean = s / ((double)n * hw);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < hw; k++) {
            double d = x[((size_t)i * C + ch) * hw + k] - *mean;
            ss += d * d;
        }
    *var = ss / ((double)n * hw - 1);
}

// The linear layer's outputs (3 of 32 inputs) by hand, from the flattened block output.
static void linear_by_hand(Net *net, int m, real *y) {
    const real *h = net_layer_output(net, 1);
    const Tensor *w = net_tensor(net, "3.linear.w"), *b = net_tensor(net, "3.linear.b");
    CHECK(h && w && b, "linear tensors or the flatten output not found");
    if (!h || !w || !b) return;
    const real *W = net_tensor_data(net, w), *bias = net_tensor_data(net, b);
    for (int j = 0; j < m; j++)
        for (int o = 0; o < 3; o++) {
            double acc = bias[o];
            for (int k = 0; k < 32; k++) acc += W[o * 32 + k] * h[j * 32 + k];
            y[j * 3 + o] = (real)acc;
        }
}

static void check_bn_update(void) {
    // bn 0 inside the residual block; dropout then bn 1 on the flat vector
    static const char *ARCH = "input c=2 h=4 w=4\nresidual\nconv out=2 k=3 pad=1\nbn\nend\n"
                              "flatten\ndropout p=0.5\nlinear out=3\nbn momentum=0.3\n";
    char err[EMO_ERRLEN];
    Net *net = net_parse(ARCH, "bn_update.arch", err, sizeof err);
    CHECK(net != NULL, "%s", err);
    if (!net) return;
    Rng r;
    rng_seed(&r, 11);
    net_init(net, &r);
    enum { N = 10, B = 4, IN = 32 };
    real x[N * IN];
    for (int i = 0; i < N * IN; i++) x[i] = rng_normal(&r) * 2 + 1;
    // bn 0's gamma 0: the block outputs x + beta in training and eval mode alike, so that
    // what bn 1 sees does not depend on the mode of bn 0
    const Tensor *g0 = net_tensor(net, "0.res.main.1.bn.gamma");
    CHECK(g0 != NULL, "bn 0's gamma not found");
    for (int ch = 0; g0 && ch < 2; ch++) net_tensor_data(net, g0)[ch] = 0;
    real *p0 = malloc(sizeof(real) * net->nparams);
    memcpy(p0, net->params, sizeof(real) * net->nparams);
    // expected: run the eval-mode pieces by hand, batch by batch
    double want[2][2][3] = {{{0}}};   // [bn][mean|var][channel]
    int nb = 0;
    for (int i = 0; i < N; i += B, nb++) {
        int m = N - i < B ? N - i : B;
        net_forward(net, x + i * IN, m, 0, NULL);   // eval: the conv's output is the same
        // layer 0 is the residual block; its conv output is what bn 0 sees. Recompute it
        // from the conv weights directly.
        const Tensor *w = net_tensor(net, "0.res.main.0.conv.w");
        const Tensor *bb = net_tensor(net, "0.res.main.0.conv.b");
        CHECK(w && bb, "conv tensors not found");
        if (!w || !bb) break;
        const real *W = net_tensor_data(net, w), *bias = net_tensor_data(net, bb);
        real conv[B * 32];
        for (int j = 0; j < m; j++)
            for (int o = 0; o < 2; o++)
                for (int yy = 0; yy < 4; yy++)
                    for (int xx = 0; xx < 4; xx++) {
                        double acc = bias[o];
                        for (int c = 0; c < 2; c++)
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++) {
                                    int iy = yy + ky - 1, ix = xx + kx - 1;
                                    if (iy < 0 || iy > 3 || ix < 0 || ix > 3) continue;
                                    acc += W[((o * 2 + c) * 3 + ky) * 3 + kx] *
                                           x[(i + j) * IN + (c * 4 + iy) * 4 + ix];
                                }
                        conv[(j * 2 + o) * 16 + yy * 4 + xx] = (real)acc;
                    }
        for (int ch = 0; ch < 2; ch++) {
            double mu, var;
            plane_stats(conv, m, 2, 16, ch, &mu, &var);
            want[0][0][ch] += mu;
            want[0][1][ch] += var;
        }
    }
    for (int ch = 0; ch < 2; ch++) want[0][0][ch] /= nb, want[0][1][ch] /= nb;
    CHECK(net_bn_update(net, x, N, B, NULL, err, sizeof err) == 0, "%s", err);
    const Tensor *rm = net_tensor(net, "0.res.main.1.bn.running_mean");
    const Tensor *rv = net_tensor(net, "0.res.main.1.bn.running_var");
    CHECK(rm && rv, "bn 0's running statistics not found");
    for (int ch = 0; rm && rv && ch < 2; ch++) {
        double gm = net_tensor_data(net, rm)[ch], gv = net_tensor_data(net, rv)[ch];
        CHECK(fabs(gm - want[0][0][ch]) <= 1e-5 * (1 + fabs(want[0][0][ch])) &&
                  fabs(gv - want[0][1][ch]) <= 1e-5 * (1 + want[0][1][ch]),
              "bn 0 channel %d: mean %.7g var %.7g, want %.7g %.7g", ch, gm, gv, want[0][0][ch],
              want[0][1][ch]);
    }
    CHECK(!memcmp(p0, net->params, sizeof(real) * net->nparams), "parameters changed");
    // bn 1 without dropout: the linear layer's outputs in eval mode, batch by batch
    const Tensor *rm1 = net_tensor(net, "4.bn.running_mean");
    real rm1_a[3] = {0};
    for (int k = 0; rm1 && k < 3; k++) rm1_a[k] = net_tensor_data(net, rm1)[k];
    double want1[3] = {0};
    for (int i = 0; i < N; i += B) {
        int m = N - i < B ? N - i : B;
        real y[B * 3];
        net_forward(net, x + i * IN, m, 0, NULL);
        linear_by_hand(net, m, y);
        for (int ch = 0; ch < 3; ch++) {
            double mu, var;
            plane_stats(y, m, 3, 1, ch, &mu, &var);
            want1[ch] += mu / nb;
        }
    }
    for (int ch = 0; rm1 && ch < 3; ch++)
        CHECK(fabs(rm1_a[ch] - want1[ch]) <= 1e-5 * (1 + fabs(want1[ch])),
              "bn 1 channel %d: mean %.7g, want %.7g (dropout must be off)", ch, (double)rm1_a[ch],
              want1[ch]);
    // with an Rng, dropout is on: the statistics differ
    Rng dr;
    rng_seed(&dr, 5);
    CHECK(net_bn_update(net, x, N, B, &dr, err, sizeof err) == 0, "%s", err);
    int differ = 0;
    for (int k = 0; rm1 && k < 3; k++) differ |= net_tensor_data(net, rm1)[k] != rm1_a[k];
    CHECK(differ, "dropout made no difference to bn 1's statistics");
    // the momenta are back: one more training forward moves bn 1's mean by 0.3 of the way
    real before[3], after[3];
    for (int k = 0; rm1 && k < 3; k++) before[k] = net_tensor_data(net, rm1)[k];
    net->dropout = 0;
    net_forward(net, x, B, 1, NULL);
    for (int k = 0; rm1 && k < 3; k++) after[k] = net_tensor_data(net, rm1)[k];
    net_forward(net, x, B, 0, NULL);
    real y[B * 3];
    linear_by_hand(net, B, y);
    for (int ch = 0; rm1 && ch < 3; ch++) {
        double mu, var;
        plane_stats(y, B, 3, 1, ch, &mu, &var);
        double exp = 0.7 * before[ch] + 0.3 * mu;
        CHECK(fabs(after[ch] - exp) <= 1e-5 * (1 + fabs(exp)), "bn 1 momentum not restored: %.7g, want %.7g",
              (double)after[ch], exp);
    }
    net_fold_bn(net);
    CHECK(net_bn_update(net, x, N, B, NULL, err, sizeof err) == -1 && strstr(err, "folded"),
          "a folded net was not refused: %s", err);
    free(p0);
    net_free(net);
    printf("net_bn_update: statistics, dropout, momenta and refusal checked\n");
}

int main(void) {
    check_bn_update();
    const char *files[] = {"simple_cnn_v1.arch", "deep_cnn_v1.arch", "cbam_cnn.arch",
                           "resnet.arch"};
    for (int i = 0; i < 4; i++) check_arch(files[i]);
    return test_result("test_fold");
}
