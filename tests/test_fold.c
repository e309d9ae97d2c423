// test_fold.c: net_fold_bn on each architecture in assets/models gives the eval-mode output of
// the unfolded net, for a batch of 1 and a batch of 5.
//
// Parameters come from net_init with a seed; batchnorm gamma and beta are moved away from 1
// and 0, and a few training forwards make the running statistics non-trivial. The error is
// measured against the largest output: max |folded - unfolded| <= 1e-4 * max |unfolded|.
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

int main(void) {
    const char *files[] = {"simple_cnn_v1.arch", "deep_cnn_v1.arch", "cbam_cnn.arch",
                           "resnet.arch"};
    for (int i = 0; i < 4; i++) check_arch(files[i]);
    return test_result("test_fold");
}
