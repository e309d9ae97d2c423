// bench.c: emocam-bench, the engine's benchmark. For each architecture it prints one JSON
// line: training images/s (forward + backward + Adam step, batch 64, data in memory), the
// GFLOP/s that is, the fraction of this machine's OpenBLAS sgemm peak, and the milliseconds
// one 48x48 face takes through the batchnorm-folded network on one thread. Where Debian's
// python3-torch is installed, PyTorch's figures for the same network, batch and threads are
// measured in the same run and printed beside ours.
#include <cblas.h>
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ensemble.h"
#include "model.h"
#include "optim.h"

#ifndef EMOCAM_SOURCE_DIR
#define EMOCAM_SOURCE_DIR "."
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void set_threads(int t) {
    omp_set_num_threads(t);
    openblas_set_num_threads(t);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// sgemm GFLOP/s on large square matrices: the ceiling for everything else.
static double sgemm_peak(int threads) {
    set_threads(threads);
    int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) return 0;
    for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double g = 2.0 * n * n * n / (now() - t) / 1e9;
        if (g > best) best = g;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

typedef struct {
    double train_img_s, infer_ms;
} Figures;

// Median milliseconds of fn over `runs` calls after 20 warm-up calls.
static double median_ms(void (*fn)(void *), void *arg, int runs) {
    double *ms = malloc(sizeof(double) * (size_t)runs);
    if (!ms) return -1;
    for (int r = 0; r < 20; r++) fn(arg);
    for (int r = 0; r < runs; r++) {
        double t = now();
        fn(arg);
        ms[r] = (now() - t) * 1e3;
    }
    qsort(ms, (size_t)runs, sizeof ms[0], cmp_double);
    double m = ms[runs / 2];
    free(ms);
    return m;
}

typedef struct {
    Net *net;
    const real *x;
} Forward;

static void one_forward(void *arg) {
    Forward *f = arg;
    net_forward(f->net, f->x, 1, 0, NULL);
}

// The network of an architecture file, reserved for training batches; NULL (reported) on error.
static Net *load_for_training(const char *path, int batch) {
    char err[EMO_ERRLEN];
    Net *net = net_parse_file(path, err, sizeof err);
    if (!net || net_reserve(net, batch, 1, err, sizeof err)) {
        fprintf(stderr, "emocam-bench: %s\n", err);
        net_free(net);
        return NULL;
    }
    return net;
}

static int bench_ours(const char *path, int batch, int threads, double seconds, Figures *f,
                      Net **out_net) {
    char err[EMO_ERRLEN];
    Net *net = load_for_training(path, batch);
    if (!net) return -1;
    long in = shape_size(net->in), k = shape_size(net->out);
    real *x = malloc(sizeof(real) * batch * in), *dl = malloc(sizeof(real) * batch * k);
    int *y = malloc(sizeof(int) * batch);
    Optim opt;
    if (!x || !dl || !y || optim_init(&opt, OPT_ADAM, net->nparams)) {
        fprintf(stderr, "emocam-bench: out of memory\n");
        return -1;
    }
    Rng rng, drop;
    rng_seed(&rng, 1);
    rng_seed(&drop, 2);
    for (long i = 0; i < batch * in; i++) x[i] = rng_uniform(&rng);
    for (int i = 0; i < batch; i++) y[i] = rng_int(&rng, (int)k);
    set_threads(threads);
    int steps = 0;
    double t0 = 0;
    for (int it = 0;; it++) {   // 3 warm-up steps, then at least `seconds`
        if (it == 3) t0 = now();
        const real *logits = net_forward(net, x, batch, 1, &drop);
        softmax_xent(logits, y, batch, (int)k, NULL, 0, NULL, dl);
        net_zero_grad(net);
        net_backward(net, x, dl, NULL, batch, &drop);
        optim_step(&opt, net);
        if (it >= 3) steps++;
        if (it >= 3 && steps >= 5 && now() - t0 >= seconds) break;
    }
    f->train_img_s = steps * batch / (now() - t0);
    optim_free(&opt);
    free(x);   // reused below for one face
    x = malloc(sizeof(real) * in);
    if (!x) return -1;
    for (long i = 0; i < in; i++) x[i] = rng_uniform(&rng);
    // one face, one thread, batchnorm folded, eval mode
    set_threads(1);
    net_fold_bn(net);
    if (net_reserve(net, 1, 0, err, sizeof err)) {
        fprintf(stderr, "emocam-bench: %s\n", err);
        return -1;
    }
    f->infer_ms = median_ms(one_forward, &(Forward){net, x}, 300);
    free(x);
    free(dl);
    free(y);
    *out_net = net;
    return 0;
}

typedef struct {
    Ensemble *e;
    Net *net;
    uint8_t face[ENS_FACE * ENS_FACE];
    real x[ENS_FACE * ENS_FACE];
    float probs[ENS_CLASSES];
    int tta;
} OneFace;

static void one_member(void *arg) {
    OneFace *o = arg;
    net_preprocess(o->net, o->face, 1, o->x);
    net_forward(o->net, o->x, 1, 0, NULL);
}

static void one_ensemble(void *arg) {
    OneFace *o = arg;
    ensemble_predict(o->e, o->face, 1, o->probs, o->tta);
}

// --ensemble LIST: what one face costs through each member and through the whole ensemble
// (preprocessing, every member, softmax, averaging), on one thread, as the live loop runs it.
// The list is loaded in the precision in use (frozen networks pack their weights for it);
// *whole gets the whole ensemble's milliseconds.
static int bench_ensemble(const char *path, int tta, double *whole) {
    char err[EMO_ERRLEN];
    Ensemble *e = ensemble_load(path, err, sizeof err);
    if (!e) {
        fprintf(stderr, "emocam-bench: %s\n", err);
        return -1;
    }
    set_threads(1);
    static OneFace o;
    o.e = e;
    o.tta = tta = tta >= 0 ? tta : ensemble_uniform_tta(e, ENS_TTA_LIST);   // -1: mixed
    Rng rng;
    rng_seed(&rng, 1);
    for (int i = 0; i < ENS_FACE * ENS_FACE; i++) o.face[i] = (uint8_t)rng_int(&rng, 256);
    printf("{\"ensemble\": \"%s\", \"blas_core\": \"%s\", \"bf16\": \"%s\", \"int8\": %d, "
           "\"tta\": %d, \"members\": [",
           path, openblas_get_corename(), emo_bf16() ? emo_bf16_unit() : "off", emo_int8(), tta);
    size_t params = 0;
    for (int i = 0; i < e->n; i++) {
        o.net = e->m[i].net;
        double ms = median_ms(one_member, &o, 300);
        params += net_count_params(o.net);
        printf("%s{\"path\": \"%s\", \"weight\": %g, \"params\": %zu, \"views\": %d, "
               "\"infer_ms_1thread\": %.3f}",
               i ? ", " : "", e->m[i].path, e->m[i].weight, net_count_params(o.net),
               ensemble_tta_views(ensemble_member_tta(e, i, tta)), ms);
    }
    double ms = median_ms(one_ensemble, &o, 300);
    printf("], \"params\": %zu, \"views\": %d, \"infer_ms_1thread\": %.3f}\n", params,
           ensemble_views(e, tta), ms);
    fflush(stdout);
    ensemble_free(e);
    if (whole) *whole = ms;
    return 0;
}

// --ensemble LIST --compare: float32, bfloat16 and (with VNNI) int8 convolutions alternately,
// rounds times (a line each), then the best of each and the speed-ups; the machine's speed
// drifts, so all are timed in one run.
static int compare_ensemble(const char *path, int tta, int rounds) {
    if (!emo_bf16_available()) {
        fprintf(stderr, "emocam-bench: --compare: this CPU (or kernel) has neither AMX-BF16 nor "
                        "AVX512-BF16\n");
        return -1;
    }
    int modes = emo_int8_available() ? 3 : 2;
    double best[3] = {1e30, 1e30, 1e30};
    for (int r = 0; r < rounds; r++)
        for (int b = 0; b < modes; b++) {
            double ms;
            emo_set_int8(0);
            emo_set_bf16(b > 0);
            if (b == 2) emo_set_int8(1);
            if (bench_ensemble(path, tta, &ms)) return -1;
            if (ms < best[b]) best[b] = ms;
        }
    emo_set_int8(0);
    emo_set_bf16(0);
    printf("{\"ensemble\": \"%s\", \"rounds\": %d, \"fp32_ms\": %.3f, \"bf16_ms\": %.3f, "
           "\"bf16_unit\": \"%s\", \"speedup\": %.2f",
           path, rounds, best[0], best[1], emo_bf16_unit(), best[0] / best[1]);
    if (modes == 3) printf(", \"int8_ms\": %.3f, \"int8_speedup\": %.2f", best[2], best[0] / best[2]);
    printf("}\n");
    return 0;
}

// --profile: where a training step's time goes, layer by layer, as a table.
static int profile(const char *path, int batch, int threads, double seconds) {
    Net *net = load_for_training(path, batch);
    if (!net) return -1;
    long in = shape_size(net->in), k = shape_size(net->out);
    int nl = net_nlayers(net);
    real *x = malloc(sizeof(real) * batch * in), *dl = malloc(sizeof(real) * batch * k);
    double *fwd = calloc((size_t)nl, sizeof *fwd), *bwd = calloc((size_t)nl, sizeof *bwd);
    if (!x || !dl || !fwd || !bwd) {
        fprintf(stderr, "emocam-bench: out of memory\n");
        return -1;
    }
    Rng rng;
    rng_seed(&rng, 1);
    for (long i = 0; i < batch * in; i++) x[i] = rng_uniform(&rng);
    for (long i = 0; i < batch * k; i++) dl[i] = (rng_uniform(&rng) - 0.5f) / batch;
    set_threads(threads);
    double *junk = calloc((size_t)nl * 2, sizeof *junk);
    for (int r = 0; r < 3 && junk; r++) net_profile(net, x, dl, batch, &rng, junk, junk + nl);
    free(junk);
    int steps = 0;
    double t0 = now();
    while (steps < 5 || now() - t0 < seconds) {
        net_zero_grad(net);
        net_profile(net, x, dl, batch, &rng, fwd, bwd);
        steps++;
    }
    double total = 0;
    for (int i = 0; i < nl; i++) total += fwd[i] + bwd[i];
    printf("%s: batch %d, %d threads, %d steps; ms per step (the forward before each step is "
           "not counted)\n",
           path, batch, threads, steps);
    printf("  %-3s %-22s %-12s %9s %9s %6s %8s\n", "#", "layer", "output", "fwd ms", "bwd ms",
           "share", "GFLOP/s");
    for (int i = 0; i < nl; i++) {
        Shape o;
        const char *name = net_layer_info(net, i, &o);
        double f = fwd[i] / steps, b = bwd[i] / steps;
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", o.c, o.h, o.w);
        double lf = net_layer_flops(net, i) * batch;   // forward FLOPs of the batch
        printf("  %-3d %-22s %-12s %9.3f %9.3f %5.1f%% ", i, name, shape, f, b,
               100 * (fwd[i] + bwd[i]) / total);
        if (lf > 0)
            printf("%8.1f\n", 3 * lf / ((f + b) * 1e-3) / 1e9);
        else
            printf("%8s\n", "-");
    }
    printf("  total %.2f ms per step = %.0f images/s\n", total / steps, batch / (total / steps / 1e3));
    free(fwd);
    free(bwd);
    free(x);
    free(dl);
    net_free(net);
    return 0;
}

// PyTorch's figures from scripts/torch_bench.py, or -1 when torch is not installed.
static int bench_torch(const char *script, const char *path, int batch, int threads,
                       double seconds, Figures *f) {
    size_t len = strlen(script) + strlen(path) + 128;
    char *cmd = malloc(len);
    if (!cmd) return -1;
    snprintf(cmd, len, "/usr/bin/python3 '%s' '%s' %d %d %g%s 2>/dev/null", script, path, batch,
             threads, seconds, emo_bf16() ? " --bf16" : "");
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p) return -1;
    char line[512];
    int got = 0;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "{\"train_img_s\": %lf, \"infer_ms\": %lf}", &f->train_img_s,
                   &f->infer_ms) == 2)
            got = 1;
    int rc = pclose(p);
    return got && rc == 0 ? 0 : -1;
}

static int have_torch(void) {
    return system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

static void usage(FILE *to) {
    fprintf(to,
            "usage: emocam-bench [options] [ARCH...]\n"
            "Benchmarks the engine on each architecture file (default: every\n"
            "assets/models/*.arch) and prints one JSON object per line.\n"
            "  --threads N     training threads (default 2)\n"
            "  --batch N       training batch size (default 64)\n"
            "  --seconds S     time each training measurement for at least S s (default 4)\n"
            "  --rounds N      alternate ours and PyTorch (--compare: fp32 and bf16) N times,\n"
            "                  report the best (default 3)\n"
            "  --no-torch      skip the PyTorch comparison\n"
            "  --profile       instead: a table of each layer's forward and backward time\n"
            "  --ensemble LIST instead: milliseconds per face through each member of an\n"
            "                  ensemble list (or .weights file) and the whole ensemble, 1 thread\n"
            "  --tta N         with --ensemble: test-time augmentation 0, 1 or 2 for every member\n"
            "                  (default: as the list says, member by member)\n"
            "  --bf16          bfloat16 matrix products on AMX or AVX512-BF16 (PyTorch: autocast)\n"
            "  --int8          with --ensemble: 8-bit convolutions (AVX512-VNNI), bfloat16 for the\n"
            "                  rest\n"
            "  --compare       with --ensemble: float32, bfloat16 and int8 alternately, --rounds times,\n"
            "                  then the best of each and the speed-up\n"
            "  -h, --help      this text\n");
}

static int parse_int(const char *flag, const char *v, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "emocam-bench: %s wants an integer in %d..%d\n", flag, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int main(int argc, char **argv) {
    int threads = 2, batch = 64, torch = 1, nfiles = 0, rounds = 3, prof = 0, tta = -1, cmp = 0;
    const char *ens = NULL;
    double seconds = 4;
    const char **files = calloc((size_t)argc + 8, sizeof *files);
    if (!files) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(files);
            return 0;
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(a, i + 1 < argc ? argv[++i] : NULL, 1, 256, &threads)) goto usage_error;
        } else if (!strcmp(a, "--batch")) {
            if (parse_int(a, i + 1 < argc ? argv[++i] : NULL, 1, 4096, &batch)) goto usage_error;
        } else if (!strcmp(a, "--seconds")) {
            int s;
            if (parse_int(a, i + 1 < argc ? argv[++i] : NULL, 1, 3600, &s)) goto usage_error;
            seconds = s;
        } else if (!strcmp(a, "--rounds")) {
            if (parse_int(a, i + 1 < argc ? argv[++i] : NULL, 1, 100, &rounds)) goto usage_error;
        } else if (!strcmp(a, "--ensemble")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "emocam-bench: --ensemble wants a list file\n");
                goto usage_error;
            }
            ens = argv[++i];
        } else if (!strcmp(a, "--tta")) {
            if (parse_int(a, i + 1 < argc ? argv[++i] : NULL, 0, 2, &tta)) goto usage_error;
        } else if (!strcmp(a, "--profile")) {
            prof = 1;
        } else if (!strcmp(a, "--bf16")) {
            if (emo_set_bf16(1)) {
                fprintf(stderr, "emocam-bench: --bf16: this CPU (or kernel) has neither AMX-BF16 nor AVX512-BF16\n");
                goto usage_error;
            }
        } else if (!strcmp(a, "--int8")) {
            if (emo_set_int8(1)) {
                fprintf(stderr, "emocam-bench: --int8: this CPU (or kernel) lacks AVX512-VNNI or "
                                "AVX512-BF16\n");
                goto usage_error;
            }
        } else if (!strcmp(a, "--compare")) {
            cmp = 1;
        } else if (!strcmp(a, "--no-torch")) {
            torch = 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "emocam-bench: unknown option %s (see --help)\n", a);
            goto usage_error;
        } else {
            files[nfiles++] = a;
        }
    }
    if (cmp && (!ens || emo_bf16())) {
        fprintf(stderr, "emocam-bench: --compare goes with --ensemble, without --bf16 or --int8\n");
        goto usage_error;
    }
    if (emo_int8() && !ens) {
        fprintf(stderr, "emocam-bench: --int8 goes with --ensemble (inference only)\n");
        goto usage_error;
    }
    if (ens) {
        free(files);
        return (cmp ? compare_ensemble(ens, tta, rounds) : bench_ensemble(ens, tta, NULL)) ? 1 : 0;
    }
    static const char *DEFAULTS[] = {"simple_cnn_v1", "deep_cnn_v1", "cbam_cnn", "resnet"};
    char paths[4][1024];
    if (nfiles == 0)
        for (int i = 0; i < 4; i++) {
            snprintf(paths[i], sizeof paths[i], "%s/assets/models/%s.arch", EMOCAM_SOURCE_DIR,
                     DEFAULTS[i]);
            files[nfiles++] = paths[i];
        }
    if (prof) {
        int rc = 0;
        for (int i = 0; i < nfiles; i++)
            if (profile(files[i], batch, threads, seconds)) rc = 1;
        free(files);
        return rc;
    }
    char script[1024];
    snprintf(script, sizeof script, "%s/scripts/torch_bench.py", EMOCAM_SOURCE_DIR);
    if (torch && !have_torch()) {
        fprintf(stderr, "emocam-bench: python3-torch not installed: PyTorch figures skipped\n");
        torch = 0;
    }
    double peak = sgemm_peak(threads);
    printf("{\"sgemm_peak_gflops\": %.1f, \"blas_core\": \"%s\", \"threads\": %d, "
           "\"batch\": %d, \"rounds\": %d, \"bf16\": %d}\n",
           peak, openblas_get_corename(), threads, batch, rounds, emo_bf16());
    fflush(stdout);
    int rc = 0;
    for (int i = 0; i < nfiles; i++) {
        // Rounds alternate ours and PyTorch's, so that both see the same machine; the best
        // round of each is reported (noise only ever slows a run down).
        Figures ours = {0, 1e9}, pt = {0, 1e9};
        int torch_ok = torch;
        Net *net = NULL;
        for (int r = 0; r < rounds; r++) {
            Figures f, g;
            Net *n = NULL;
            if (bench_ours(files[i], batch, threads, seconds, &f, &n)) {
                rc = 1;
                break;
            }
            net_free(net);
            net = n;
            if (f.train_img_s > ours.train_img_s) ours.train_img_s = f.train_img_s;
            if (f.infer_ms < ours.infer_ms) ours.infer_ms = f.infer_ms;
            if (torch_ok && bench_torch(script, files[i], batch, threads, seconds, &g) == 0) {
                if (g.train_img_s > pt.train_img_s) pt.train_img_s = g.train_img_s;
                if (g.infer_ms < pt.infer_ms) pt.infer_ms = g.infer_ms;
            } else {
                torch_ok = 0;
            }
        }
        if (!net) continue;
        double flops = net_flops(net);   // forward FLOPs per image
        double gflops = ours.train_img_s * 3 * flops / 1e9;   // training ~ 3x forward
        const char *name = strrchr(files[i], '/') ? strrchr(files[i], '/') + 1 : files[i];
        printf("{\"model\": \"%s\", \"params\": %zu, \"mflop_per_image\": %.1f, "
               "\"train_img_s\": %.0f, \"train_gflops\": %.1f, \"peak_fraction\": %.2f, "
               "\"infer_ms_1thread\": %.3f",
               name, net_count_params(net), flops / 1e6, ours.train_img_s, gflops,
               peak > 0 ? gflops / peak : 0, ours.infer_ms);
        net_free(net);
        if (torch_ok)
            printf(", \"torch_train_img_s\": %.0f, \"torch_infer_ms_1thread\": %.3f, "
                   "\"train_speedup\": %.2f, \"infer_speedup\": %.2f",
                   pt.train_img_s, pt.infer_ms, ours.train_img_s / pt.train_img_s,
                   pt.infer_ms / ours.infer_ms);
        printf("}\n");
        fflush(stdout);
    }
    free(files);
    return rc;
usage_error:
    free(files);
    return 2;
}
