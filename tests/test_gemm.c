// test_gemm.c: the bfloat16 matrix product against a product computed in double from the
// same operands rounded to bfloat16, for every transpose pair, beta 0 and 1, shapes that are
// not whole tiles, K longer than one packing block, N wider than one, leading dimensions wider
// than the rows, and from two threads at once; on each unit the CPU has (AMX, and AVX512-BF16,
// which AMX CPUs have too). Rounding to bfloat16 is checked against its definition (round to
// nearest, ties to even). Skipped, saying so, on a CPU with neither.
//
// Tolerance: with the operands rounded the same way on both sides, only the float32
// accumulation differs: |got - want| <= 1e-5 * sum |a_ik b_kj|.
//
// Then a small network through every convolution path (im2col, shifted GEMMs, 5x5, strided,
// the layers that take Winograd in float32), batchnorm and linear layers: a training step in
// bfloat16 against the same step in float32. The outputs, the input gradient and every
// parameter gradient agree to 2 % (relative L2; 0.3-0.6 % measured); a wrong tile layout or a
// missed transpose gives errors near 100 %. The network is linear between its batchnorm and
// its end on purpose: after a ReLU or a max-pool, rounding flips a few units' masks, and their
// gradients then differ by 4-6 % in a network this small (measured), which would hide a bug.
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "testutil.h"

static float bf16_round(float f) {   // round to nearest even, as VCVTNE2PS2BF16 (no NaNs here)
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

// One product: op(A) M x K, op(B) K x N, with leading dimensions padded by `pad`.
static void check(int ta, int tb, int M, int N, int K, int beta, int pad, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int lda = ac + pad, ldb = bc + pad, ldc = N + pad;
    float *A = malloc(sizeof(float) * (size_t)ar * lda);
    float *B = malloc(sizeof(float) * (size_t)br * ldb);
    float *C = malloc(sizeof(float) * (size_t)M * ldc);
    float *C0 = malloc(sizeof(float) * (size_t)M * ldc);
    for (size_t i = 0; i < (size_t)ar * lda; i++) A[i] = 4 * rng_uniform(&rng) - 2;
    for (size_t i = 0; i < (size_t)br * ldb; i++) B[i] = 2 * rng_uniform(&rng) - 1;
    for (size_t i = 0; i < (size_t)M * ldc; i++) C[i] = C0[i] = rng_uniform(&rng) - 0.5f;
    emo_gemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
             1, A, lda, B, ldb, (float)beta, C, ldc);
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double want = beta ? C0[(size_t)i * ldc + j] : 0, scale = fabs(want) + 1e-30;
            for (int k = 0; k < K; k++) {
                double a = bf16_round(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
                double b = bf16_round(tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                want += a * b;
                scale += fabs(a * b);
            }
            double e = fabs(C[(size_t)i * ldc + j] - want) / scale;
            if (e > worst) worst = e;
            if (e > 1e-5) bad++;
        }
    for (int i = 0; i < M; i++)   // the padding between rows is left alone
        for (int j = N; j < ldc; j++)
            if (C[(size_t)i * ldc + j] != C0[(size_t)i * ldc + j]) bad++;
    CHECK(bad == 0, "ta %d tb %d M %d N %d K %d beta %d pad %d: %d wrong, worst error %.2g", ta, tb,
          M, N, K, beta, pad, bad, worst);
    free(A), free(B), free(C), free(C0);
}

static double rel_l2(const real *a, const real *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++)
        d += (a[i] - b[i]) * (double)(a[i] - b[i]), s += (double)b[i] * b[i];
    return sqrt(d / (s + 1e-30));
}

static const char *NET = "input c=3 h=24 w=24\n"
                        "conv out=16 k=3 pad=1\n"          // im2col, K = 27
                        "conv out=32 k=3 pad=1 bias=0\n"   // shifted (Winograd in float32)
                        "bn\n"
                        "conv out=32 k=3 stride=2 pad=1\n"
                        "conv out=32 k=5 pad=2\n"   // 12x12, 5x5
                        "conv out=48 k=3 stride=2 pad=1\n"
                        "flatten\n"
                        "linear out=40\n"
                        "linear out=7\n";

// One training step of the network above at batch n: output, dx and gradients
// into out.
static void step(int bf16, int n, real *out, real *dx, real *grads, size_t *ngrads) {
    char err[EMO_ERRLEN];
    emo_set_bf16(bf16);
    Net *net = net_parse(NET, "test", err, sizeof err);
    CHECK(net && net_reserve(net, n, 1, err, sizeof err) == 0, "net: %s", err);
    if (!net) return;
    Rng rng;
    rng_seed(&rng, 7);
    net_init(net, &rng);
    size_t in = (size_t)shape_size(net->in), outn = (size_t)shape_size(net->out);
    real *x = malloc(sizeof(real) * in * n), *dy = malloc(sizeof(real) * outn * n);
    for (size_t i = 0; i < in * n; i++) x[i] = 2 * rng_uniform(&rng) - 1;
    for (size_t i = 0; i < outn * n; i++) dy[i] = rng_uniform(&rng) - 0.5f;
    net_zero_grad(net);
    const real *y = net_forward(net, x, n, 1, &rng);
    memcpy(out, y, sizeof(real) * outn * n);
    net_backward(net, x, dy, dx, n, &rng);
    memcpy(grads, net->grads, sizeof(real) * net->nparams);
    *ngrads = net->nparams;
    free(x), free(dy);
    net_free(net);
}

static void check_net(void) {
    enum { N = 32, IN = 3 * 24 * 24, MAXP = 200000 };
    real *y0 = malloc(sizeof(real) * N * 7), *y1 = malloc(sizeof(real) * N * 7);
    real *d0 = malloc(sizeof(real) * N * IN), *d1 = malloc(sizeof(real) * N * IN);
    real *g0 = malloc(sizeof(real) * MAXP), *g1 = malloc(sizeof(real) * MAXP);
    size_t n0 = 0, n1 = 0;
    step(0, N, y0, d0, g0, &n0);
    step(1, N, y1, d1, g1, &n1);
    CHECK(n0 == n1 && n0 > 0 && n0 <= MAXP, "parameter counts %zu %zu", n0, n1);
    double ey = rel_l2(y1, y0, N * 7), ed = rel_l2(d1, d0, (size_t)N * IN), eg = rel_l2(g1, g0, n0);
    CHECK(ey < 0.02 && ed < 0.02 && eg < 0.02,
          "bfloat16 step against float32: output %.3g, dx %.3g, gradients %.3g", ey, ed, eg);
    printf("test_gemm: bfloat16 training step vs float32, relative L2: output "
           "%.2g, dx %.2g, "
           "gradients %.2g\n",
           ey, ed, eg);
    free(y0), free(y1), free(d0), free(d1), free(g0), free(g1);
}

// Inference with the weights packed once (frozen networks in bfloat16 mode): the shifted path
// by tap, im2col by group, a wide linear layer (with a fused ReLU), against float32, for one
// image and three.
static const char *FROZEN = "input c=16 h=24 w=24\n"
                           "conv out=32 k=3 pad=1 bias=0\n"   // shifted: 9 packed taps
                           "bn\n"
                           "conv out=32 k=3 pad=1 stride=2\n"   // im2col
                           "conv out=64 k=3 pad=1 groups=2\n"   // 2 packed groups
                           "flatten\n"
                           "linear out=48\n"   // packed
                           "relu\n"
                           "linear out=7\n";   // too narrow to pack: sgemm

static void frozen_out(int bf16, int n, real *y) {
    char err[EMO_ERRLEN];
    emo_set_bf16(bf16);
    Net *net = net_parse(FROZEN, "frozen", err, sizeof err);
    CHECK(net != NULL, "%s", err);
    if (!net) return;
    Rng rng;
    rng_seed(&rng, 11);
    net_init(net, &rng);
    real *bufs = net->bufs;   // non-trivial running statistics to fold
    for (size_t i = 0; i < net->nbufs; i++) bufs[i] = 0.5f + rng_uniform(&rng);
    net_fold_bn(net);
    size_t in = (size_t)shape_size(net->in);
    real *x = malloc(sizeof(real) * in * n);
    for (size_t i = 0; i < in * n; i++) x[i] = 2 * rng_uniform(&rng) - 1;
    CHECK(net_reserve(net, n, 0, err, sizeof err) == 0, "%s", err);
    memcpy(y, net_forward(net, x, n, 0, NULL), sizeof(real) * 7 * n);
    free(x);
    net_free(net);
}

static void check_frozen(void) {
    for (int n = 1; n <= 3; n += 2) {
        real y0[21], y1[21];
        frozen_out(0, n, y0);
        frozen_out(1, n, y1);
        double e = rel_l2(y1, y0, 7 * (size_t)n);
        CHECK(e < 0.02, "frozen network, batch %d: bfloat16 against float32 %.3g", n, e);
        printf("test_gemm: frozen network, batch %d, bfloat16 vs float32, relative L2 %.2g\n", n, e);
    }
}

static void check_unit(void);

int main(void) {
    // 1 + 2^-8 is a tie: to even (1); 1 + 3*2^-8 too (to 1 + 2^-6); 1 + 2^-8 + 2^-10 is not
    CHECK(bf16_round(1.00390625f) == 1.0f && bf16_round(1.01171875f) == 1.015625f &&
              bf16_round(1.0048828125f) == 1.0078125f,
          "bfloat16 rounding");
    int best = emo_bf16_available();
    if (!best) {
        printf("test_gemm: SKIPPED, this CPU (or kernel) has neither AMX-BF16 nor AVX512-BF16\n");
        return 77;
    }
    for (int unit = best; unit <= EMO_BF16_AVX512; unit++) {   // AMX CPUs: both units
        CHECK(emo_bf16_set_unit(unit) == 0, "unit %d", unit);
        printf("test_gemm: bfloat16 on %s\n", emo_bf16_unit());
        check_unit();
    }
    CHECK(emo_bf16_set_unit(EMO_BF16_AMX) == (best == EMO_BF16_AMX ? 0 : -1), "AMX unit");
    return test_result("test_gemm");
}

// Every check of this file, on the unit in use.
static void check_unit(void) {
    CHECK(emo_set_bf16(1) == 0, "bf16 on");
    static const int shapes[][3] = {
        {16, 16, 16},   {32, 32, 32},  {17, 33, 19},    {64, 576, 288}, {48, 100, 1100},
        {128, 300, 64}, {31, 16, 600}, {100, 40, 1537}, {16, 700, 40},  {257, 36, 2304},
    };
    uint64_t seed = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 4; t++, seed++)
            check(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], (int)(seed & 1),
                  (int)(seed % 3) * 5, seed);
    // beta 1 on every shape, from two threads at once, each with its own packing buffers
#pragma omp parallel for num_threads(2)
    for (int s = 0; s < 10; s++)
        check(s & 1, s >> 1 & 1, shapes[s][0], shapes[s][1], shapes[s][2], 1, 3, 100 + s);
    check_net();
    check_frozen();
    emo_set_bf16(0);
    CHECK(!emo_bf16(), "bf16 off");
}
