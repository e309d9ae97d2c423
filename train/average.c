// average.c: emocam-train average, stochastic weight averaging (Izmailov et al., 2018) after
// the fact: the mean of several weights files of one architecture (typically the epochs of
// one run, kept with keep_epochs = 1), with every batchnorm's running statistics then
// measured again on training images, since the mean of the members' statistics is not the
// statistics of the mean network.
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "augment.h"
#include "data.h"
#include "report.h"

static const char *const HELP =
    "usage: emocam-train average OUT.weights IN.weights... --data DATA [options]\n"
    "\n"
    "Average the parameters of weights files of the same architecture (stochastic weight\n"
    "averaging: for example the epochs of a run trained with keep_epochs = 1 at a constant\n"
    "learning rate), then measure every batchnorm's running mean and variance again by a\n"
    "forward pass over training images (by default unaugmented, dropout off), and write OUT.\n"
    "With one IN, this only measures its batchnorm statistics again. With PublicTest faces in\n"
    "DATA, prints the accuracy of the first IN and of the result.\n"
    "OUT is written under a temporary name and renamed when complete.\n"
    "\n"
    "  --data DATA        FER2013 folder, Kaggle CSV or class folders: the training split's\n"
    "                     images give the statistics (without --data, the members' running\n"
    "                     statistics are averaged too: a rough stand-in)\n"
    "  --split S          official (default) | 80/20 | 70/15/15, as the run was trained\n"
    "  --seed N           the split's seed and the draw of --bn-images (default 1)\n"
    "  --bn-images N      use N training images, drawn at random (default: all of them)\n"
    "  --aug SPEC         augment them first, as emocam-train train's aug setting (default none)\n"
    "  --dropout          keep dropout on, as in training (default off, as in inference)\n"
    "  --batch N          batch size for the statistics (default 64, as in training)\n"
    "  --f16              store OUT in float16 (see emocam-train export)\n"
    "  --cache FILE       the decoded-data cache (default: ~/.cache/emocam/...)\n"
    "  --no-cache         neither read nor write a cache\n"
    "  --threads N        threads for the math (default: all cores)\n"
    "  --bf16             bfloat16 matrix products (AMX or AVX512-BF16)\n"
    "  -h, --help         this text\n"
    "\n"
    "Exit status: 0 done, 1 a file could not be read or written, 2 bad usage.\n";

// PublicTest accuracy of net (eval mode), or -1 when d holds no PublicTest faces.
static double public_acc(Net *net, const Dataset *d, int batch) {
    int *idx = NULL, n = 0;
    if (dataset_select(d, USAGE_PUBLIC_TEST, &idx, &n) || n == 0) {
        free(idx);
        return -1;
    }
    real *x = real_alloc((size_t)batch * FACE_PIXELS);
    long correct = 0;
    for (int i = 0; x && i < n; i += batch) {
        int m = n - i < batch ? n - i : batch;
        for (int j = 0; j < m; j++)
            net_preprocess(net, dataset_face(d, idx[i + j]), 1, x + (size_t)j * FACE_PIXELS);
        const real *p = net_forward(net, x, m, 0, NULL);
        for (int j = 0; p && j < m; j++) {
            int best = 0;
            for (int k = 1; k < NCLASSES; k++)
                if (p[j * NCLASSES + k] > p[j * NCLASSES + best]) best = k;
            correct += best == d->labels[idx[i + j]];
        }
    }
    free(x);
    free(idx);
    return (double)correct / n;
}

int average_main(int argc, char **argv) {
    const char *out = NULL, *data = NULL, *split = "official", *cache_arg = NULL, *aug_spec = "none";
    const char **in = calloc((size_t)argc, sizeof *in);
    long seed = 1, bn_images = 0, batch = 64, threads = omp_get_num_procs();
    int nin = 0, f16 = 0, no_cache = 0, dropout = 0, rc = 2;
    if (!in) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP, stdout);
            rc = 0;
            goto out;
        }
        if (!strcmp(a, "--f16")) {
            f16 = 1;
        } else if (!strcmp(a, "--no-cache")) {
            no_cache = 1;
        } else if (!strcmp(a, "--dropout")) {
            dropout = 1;
        } else if (!strcmp(a, "--bf16")) {
            if (emo_set_bf16(1)) {
                fprintf(stderr, "emocam-train average: --bf16: this CPU (or kernel) has neither AMX-BF16 nor AVX512-BF16\n");
                goto out;
            }
        } else if (!strcmp(a, "--data") || !strcmp(a, "--split") || !strcmp(a, "--cache") ||
                   !strcmp(a, "--aug")) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, "emocam-train average: %s needs a value (see --help)\n", a);
                goto out;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--data")) data = v;
            else if (!strcmp(a, "--split")) split = v;
            else if (!strcmp(a, "--aug")) aug_spec = v;
            else cache_arg = v;
        } else if (!strcmp(a, "--seed") || !strcmp(a, "--bn-images") || !strcmp(a, "--batch") ||
                   !strcmp(a, "--threads")) {
            long lo = !strcmp(a, "--seed") || !strcmp(a, "--bn-images") ? 0 : 1;
            long hi = !strcmp(a, "--threads") ? 256 : !strcmp(a, "--batch") ? 4096 : 0x7fffffffL;
            long *dst = !strcmp(a, "--seed")        ? &seed
                        : !strcmp(a, "--bn-images") ? &bn_images
                        : !strcmp(a, "--batch")     ? &batch
                                                    : &threads;
            if (i + 1 >= argc || parse_long(argv[i + 1], lo, hi, dst)) {
                fprintf(stderr, "emocam-train average: %s: want a whole number %ld..%ld, not '%s'\n", a,
                        lo, hi, i + 1 < argc ? argv[i + 1] : "");
                goto out;
            }
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "emocam-train average: unknown option '%s' (see --help)\n", a);
            goto out;
        } else if (!out) {
            out = a;
        } else {
            in[nin++] = a;
        }
    }
    SplitKind sk;
    if (split_kind_parse(split, &sk)) {
        fprintf(stderr, "emocam-train average: --split: want official, 80/20 or 70/15/15, not '%s'\n",
                split);
        goto out;
    }
    if (nin < 1) {
        fprintf(stderr, "emocam-train average: give OUT.weights and one or more IN.weights (see --help)\n");
        goto out;
    }
    AugConfig aug = aug_config_none();
    char err[EMO_ERRLEN] = "", warn[EMO_ERRLEN] = "";
    if (aug_config_parse(&aug, aug_spec, err, sizeof err)) {
        fprintf(stderr, "emocam-train average: --aug: %s\n", err);
        goto out;
    }
    if (cache_arg && no_cache) {
        fprintf(stderr, "emocam-train average: --cache and --no-cache contradict each other\n");
        goto out;
    }
    for (int i = 0; i < nin; i++)
        if (!strcmp(in[i], out)) {
            fprintf(stderr, "emocam-train average: %s is both an input and the output\n", out);
            goto out;
        }
    omp_set_num_threads((int)threads);
    openblas_set_num_threads((int)threads);

    // the mean of the parameters (and, for now, of the running statistics), summed in double
    rc = 1;
    Net *net = NULL, *first = NULL;
    double *sum = NULL;
    Dataset d = {0};
    Split sp = {0};
    int have_data = 0;
    for (int i = 0; i < nin; i++) {
        Net *m = net_load(in[i], err, sizeof err);
        if (!m) {
            fprintf(stderr, "emocam-train average: %s\n", err);
            goto done;
        }
        if (!net) {
            net = m;
            sum = calloc(net->nparams + net->nbufs, sizeof *sum);
            if (!sum) {
                fprintf(stderr, "emocam-train average: out of memory\n");
                goto done;
            }
        } else if (strcmp(m->arch, net->arch) || m->nparams != net->nparams || m->nbufs != net->nbufs) {
            fprintf(stderr, "emocam-train average: %s: another architecture than %s's\n", in[i], in[0]);
            net_free(m);
            goto done;
        }
        for (size_t j = 0; j < m->nparams; j++) sum[j] += m->params[j];
        for (size_t j = 0; j < m->nbufs; j++) sum[m->nparams + j] += m->bufs[j];
        if (m != net) net_free(m);
    }
    for (size_t j = 0; j < net->nparams; j++) net->params[j] = (real)(sum[j] / nin);
    for (size_t j = 0; j < net->nbufs; j++) net->bufs[j] = (real)(sum[net->nparams + j] / nin);
    printf("averaged %d weights files of %s (%zu parameters)\n", nin, net->file, net->nparams);

    // the running statistics, measured on the training images
    if (data) {
        int tty = isatty(2);
        char *cache = no_cache ? NULL : cache_arg ? strdup(cache_arg) : dataset_default_cache(data, NULL);
        DataLoadOpts lo = {DATA_AUTO, cache, load_progress, &tty};
        int bad = dataset_load(data, &lo, &d, err, sizeof err, warn, sizeof warn);
        free(cache);
        if (bad) {
            fprintf(stderr, "emocam-train average: %s\n", err);
            goto done;
        }
        have_data = 1;
        if (warn[0]) fprintf(stderr, "emocam-train average: warning: %s\n", warn);
        if (dataset_split(&d, sk, (uint64_t)seed, &sp, err, sizeof err)) {
            fprintf(stderr, "emocam-train average: %s\n", err);
            goto done;
        }
        int n = sp.ntrain;
        if (n == 0) {
            fprintf(stderr, "emocam-train average: %s: the %s split has no training images\n", data,
                    split_kind_name(sk));
            goto done;
        }
        if (bn_images > 0 && bn_images < n) {   // a seeded partial shuffle picks the subset
            Rng r;
            rng_seed(&r, (uint64_t)seed ^ 0xB17EA5ULL);
            for (int i = 0; i < bn_images; i++) {
                int j = i + rng_int(&r, n - i), t = sp.train[i];
                sp.train[i] = sp.train[j];
                sp.train[j] = t;
            }
            n = (int)bn_images;
        }
        real *x = real_alloc((size_t)n * FACE_PIXELS);
        if (!x) {
            fprintf(stderr, "emocam-train average: out of memory for %d images\n", n);
            goto done;
        }
        Rng ar, dr;   // augmentation, dropout
        rng_seed(&ar, (uint64_t)seed ^ 0xA06ULL);
        rng_seed(&dr, (uint64_t)seed ^ 0xD50ULL);
        for (int i = 0; i < n; i++) {
            uint8_t face[FACE_PIXELS];
            augment_u8(&aug, &ar, dataset_face(&d, sp.train[i]), face, FACE_W, FACE_H);
            net_preprocess(net, face, 1, x + (size_t)i * FACE_PIXELS);
        }
        double t0 = now_s();
        int bad_bn = net_bn_update(net, x, n, (int)batch, dropout ? &dr : NULL, err, sizeof err);
        free(x);
        if (bad_bn) {
            fprintf(stderr, "emocam-train average: %s\n", err);
            goto done;
        }
        printf("batchnorm statistics measured on %d training images of %s (%.1f s)\n", n, data,
               now_s() - t0);
    } else if (net->nbufs) {
        printf("note: without --data the running statistics are the members' mean, not measured\n");
    }
    if (net_save_as(net, out, f16, err, sizeof err)) {
        fprintf(stderr, "emocam-train average: %s\n", err);
        goto done;
    }
    // the first input's accuracy beside the result's: read again, since net became the mean
    double a0 = -1, a1 = -1;
    if (have_data && (a1 = public_acc(net, &d, (int)batch)) >= 0 &&
        (first = net_load(in[0], err, sizeof err)))
        a0 = public_acc(first, &d, (int)batch);
    if (a0 >= 0)
        printf("PublicTest accuracy: %.2f %% (%s), %.2f %% (the average)\n", 100 * a0, in[0], 100 * a1);
    else if (a1 >= 0)
        printf("PublicTest accuracy: %.2f %% (the average)\n", 100 * a1);
    printf("wrote %s\n", out);
    rc = 0;
done:
    if (have_data) {
        split_free(&sp);
        dataset_free(&d);
    }
    free(sum);
    net_free(net);
    net_free(first);
out:
    free(in);
    return rc;
}
