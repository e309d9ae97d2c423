// test_gemm_i8.c: the 8-bit product (model/gemm_i8.c) against the same product computed here
// in 64-bit integers from its definition: A quantized per row (scale max |A[m]| / 127, round to
// nearest even, [-127, 127]), B with one scale from [lo, hi] (zero point 0 and hi / 255 when
// lo >= 0, else 128 and max(-lo, hi) / 127), C = sa[m] sb (sum a b - z sum a). Shapes that are
// not whole tiles, K over one packing block (512) and over four, N over one column block
// (256), B as plain rows and as overlapping views (a convolution's lowered input), inputs never
// negative and signed, an all-zero B, and from two threads at once; and emo_quantize gives
// the definition's bytes. Tolerance: only float32 rounding of
// the integer sums and of the scaling differs, |got - want| <= 1e-5 * sa sb sum |a| |b - z|
// (plus z sum |a|). The quantized product must also stay near the float32 one (relative L2
// under 2 %, a check on the definition's scales, not only on its arithmetic).
//
// The linear layers' product (emo_gemv_i8: each input row its own scale) against the same
// definition row by row.
//
// A convolution on the int8 path (padded phase planes, any stride) against the same
// definition computed here from the input itself: the input's range gives the scale, padding
// is the zero point, and every output is sa[o] sb (sum a (b - z)) + bias, each image with its
// own scale (its range alone: a face's classes must not depend on its batch), for strides 1, 2
// and 3, kernels 1, 2, 3 and 5, odd plane sizes, and batches of 1 to 3.
// Tolerance as above.
//
// Then a frozen network whose convolutions take the 8-bit path (the padded-plane path and
// im2col; a grouped one stays in bfloat16), and a linear layer too, against float32: outputs
// within 5 % relative L2.
// Skipped, saying so, on a CPU without AVX512-VNNI and AVX512-BF16 (or AMX).
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "testutil.h"

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// op(B) row k, via the map.
static const float *row(RowMap b, int k) { return rowmap_row(b, k); }

static double rel_l2d(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return sqrt(num / (den + 1e-30));
}

// One product: A M x K (row stride K + pad), B K x N through `map` (views=1: rows overlap,
// three per group, as a convolution's taps), signed: B in [-1, 1], else [0, 1].
static void check(int M, int N, int K, int views, int sign, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    int lda = K + 3;
    float *A = malloc(sizeof(float) * (size_t)M * lda);
    for (size_t i = 0; i < (size_t)M * lda; i++) A[i] = 2 * rng_uniform(&rng) - 1;
    for (int m = 0; m < M; m += 7) A[(size_t)m * lda] = 3;   // rows with one big weight
    // B's storage: plain K rows of N + 5, or groups of three views 0, 7, 2N/3 into rows of 2N
    size_t ld = (size_t)N + 5, len = views ? (size_t)(K + 2) / 3 * 2 * N + N + 16 : (size_t)K * ld;
    float *store = malloc(sizeof(float) * len);
    for (size_t i = 0; i < len; i++)
        store[i] = sign ? 2 * rng_uniform(&rng) - 1 : rng_uniform(&rng) < 0.3f ? 0 : rng_uniform(&rng);
    int off[3] = {0, 7, 2 * N / 3};
    RowMap map = views ? (RowMap){store, (size_t)2 * N, 3, off} : (RowMap){store, ld, 1, NULL};
    float lo, hi;
    emo_range(store, len, &lo, &hi);
    I8Pack *p = emo_pack_i8(M, K, A, lda);
    CHECK(p != NULL, "pack");
    if (!p) return;
    float *C = malloc(sizeof(float) * (size_t)M * (N + 2));
    for (size_t i = 0; i < (size_t)M * (N + 2); i++) C[i] = NAN;   // every element written
    emo_gemm_i8(p, N, map, lo, hi, C, N + 2);

    // the definition
    int z = lo >= 0 ? 0 : 128;
    float sb = z ? fmaxf(-lo, hi) / 127 : hi / 255;
    if (!(sb > 0)) sb = 1;
    float inv = 1 / sb;
    int8_t *aq = malloc((size_t)M * K);
    float *sa = malloc(sizeof(float) * M);
    uint8_t *bq = malloc((size_t)K * N);
    double *want = malloc(sizeof(double) * (size_t)M * N), *exact = malloc(sizeof(double) * (size_t)M * N);
    for (int m = 0; m < M; m++) {
        float mx = 0;
        for (int k = 0; k < K; k++) mx = fmaxf(mx, fabsf(A[(size_t)m * lda + k]));
        sa[m] = mx > 0 ? mx / 127 : 1;
        for (int k = 0; k < K; k++)
            aq[(size_t)m * K + k] = (int8_t)clampi((int)nearbyintf(A[(size_t)m * lda + k] / sa[m]), -127, 127);
    }
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) bq[(size_t)k * N + n] = (uint8_t)clampi((int)nearbyintf(row(map, k)[n] * inv) + z, 0, 255);
    int bad = 0;
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            int64_t acc = 0, mag = 0;
            double ex = 0;
            for (int k = 0; k < K; k++) {
                int a = aq[(size_t)m * K + k], b = bq[(size_t)k * N + n];
                acc += (int64_t)a * (b - z);
                mag += (int64_t)abs(a) * (abs(b - z) + z);
                ex += (double)A[(size_t)m * lda + k] * row(map, k)[n];
            }
            double w = (double)sa[m] * sb * (double)acc, tol = 1e-5 * sa[m] * sb * (double)mag + 1e-30;
            want[(size_t)m * N + n] = w;
            exact[(size_t)m * N + n] = ex;
            double e = fabs(C[(size_t)m * (N + 2) + n] - w) / tol;
            if (!(e <= 1)) bad++;
            if (e > worst || e != e) worst = e;
        }
    CHECK(bad == 0, "int8 %dx%dx%d views %d sign %d: %d wrong, worst %.3g of tolerance", M, N, K,
          views, sign, bad, worst);
    // B's storage quantized once (emo_quantize): the definition's bytes
    EmoQuant eq = emo_quant(lo, hi);
    CHECK(eq.zero == z && eq.scale == sb, "emo_quant: %g %d, want %g %d", eq.scale, eq.zero, sb, z);
    uint8_t *sq = malloc(len);
    emo_quantize(store, len, eq, sq);
    int qbad = 0;
    for (size_t i = 0; i < len; i++)
        qbad += sq[i] != (uint8_t)clampi((int)nearbyintf(store[i] * inv) + z, 0, 255);
    CHECK(qbad == 0, "emo_quantize: %d bytes differ from the definition", qbad);
    free(sq);
    float *got = malloc(sizeof(float) * (size_t)M * N);
    for (int m = 0; m < M; m++) memcpy(got + (size_t)m * N, C + (size_t)m * (N + 2), sizeof(float) * N);
    double q = rel_l2d(got, exact, (size_t)M * N);
    CHECK(q < 0.02, "int8 %dx%dx%d: %.3g relative L2 from float32", M, N, K, q);
    emo_free_i8(p);
    free(A);
    free(store);
    free(C);
    free(aq);
    free(sa);
    free(bq);
    free(want);
    free(exact);
    free(got);
}

// A linear layer's product (emo_gemv_i8): Y (N x M) = X A^T with each row of X quantized on its
// own, against the same definition per row; N over one group of four and not a multiple of it,
// K not a multiple of 64, M odd, rows never negative, signed, and all zero.
static void check_rows(int M, int N, int K, int sign, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    int lda = K + 5, ldx = K + 3, ldy = M + 2;
    float *A = malloc(sizeof(float) * (size_t)M * lda), *X = malloc(sizeof(float) * (size_t)N * ldx);
    float *Y = malloc(sizeof(float) * (size_t)N * ldy);
    for (size_t i = 0; i < (size_t)M * lda; i++) A[i] = 2 * rng_uniform(&rng) - 1;
    for (int j = 0; j < N; j++)
        for (int k = 0; k < ldx; k++)   // row j scaled by j + 1: each row its own range
            X[(size_t)j * ldx + k] = (j + 1) * (sign ? 2 * rng_uniform(&rng) - 1
                                                     : rng_uniform(&rng) < 0.3f ? 0 : rng_uniform(&rng));
    if (N > 2) memset(X + 2 * (size_t)ldx, 0, sizeof(float) * K);   // an all-zero row
    for (size_t i = 0; i < (size_t)N * ldy; i++) Y[i] = NAN;
    I8Rows *p = emo_pack_i8_rows(M, K, A, lda);
    CHECK(p != NULL, "pack rows");
    if (!p) return;
    emo_gemv_i8(p, N, X, ldx, Y, ldy);
    int bad = 0, nan = 0;
    double worst = 0, num = 0, den = 0;
    for (int j = 0; j < N; j++) {
        const float *x = X + (size_t)j * ldx;
        float lo = 0, hi = 0;
        for (int k = 0; k < K; k++) lo = fminf(lo, x[k]), hi = fmaxf(hi, x[k]);
        int z = lo >= 0 ? 0 : 128;
        float sb = z ? fmaxf(-lo, hi) / 127 : hi / 255;
        if (!(sb > 0)) sb = 1;
        for (int m = 0; m < M; m++) {
            const float *a = A + (size_t)m * lda;
            float mx = 0;
            for (int k = 0; k < K; k++) mx = fmaxf(mx, fabsf(a[k]));
            float sa = mx > 0 ? mx / 127 : 1;
            int64_t acc = 0, mag = 0;
            double ex = 0;
            for (int k = 0; k < K; k++) {
                int aq = clampi((int)nearbyintf(a[k] / sa), -127, 127);
                int b = clampi((int)nearbyintf(x[k] * (1 / sb)) + z, 0, 255);
                acc += (int64_t)aq * (b - z);
                mag += (int64_t)abs(aq) * (abs(b - z) + z);
                ex += (double)a[k] * x[k];
            }
            double w = (double)sa * sb * (double)acc, tol = 1e-5 * sa * sb * (double)mag + 1e-30;
            float got = Y[(size_t)j * ldy + m];
            double e = fabs(got - w) / tol;
            if (!(e <= 1)) bad++;
            if (got != got) nan++;
            if (e > worst || e != e) worst = e;
            num += (got - ex) * (got - ex), den += ex * ex;
        }
    }
    CHECK(bad == 0 && nan == 0, "int8 rows %dx%dx%d sign %d: %d wrong (%d unwritten), worst %.3g of tolerance",
          M, N, K, sign, bad, nan, worst);
    double q = sqrt(num / (den + 1e-30));
    CHECK(q < 0.02, "int8 rows %dx%dx%d: %.3g relative L2 from float32", M, N, K, q);
    emo_free_i8_rows(p);
    free(A);
    free(X);
    free(Y);
}

// An all-zero input: C is exactly zero (the zero point cancels).
static void check_zero(void) {
    enum { M = 40, N = 50, K = 70 };
    float A[M * K], B[K * N], C[M * N];
    for (int i = 0; i < M * K; i++) A[i] = (float)(i % 13) - 6;
    memset(B, 0, sizeof B);
    I8Pack *p = emo_pack_i8(M, K, A, K);
    emo_gemm_i8(p, N, (RowMap){B, N, 1, NULL}, 0, 0, C, N);
    int nz = 0;
    for (int i = 0; i < M * N; i++) nz += C[i] != 0;
    CHECK(nz == 0, "zero input: %d non-zero outputs", nz);
    emo_gemm_i8(p, N, (RowMap){B, N, 1, NULL}, -1, 1, C, N);   // signed range, z = 128
    nz = 0;
    for (int i = 0; i < M * N; i++) nz += fabsf(C[i]) > 1e-4f;
    CHECK(nz == 0, "zero input, signed range: %d non-zero outputs", nz);
    emo_free_i8(p);
}

// A frozen network: 8-bit convolutions against float32.
static const char *NET = "input c=8 h=20 w=20\n"
                         "conv out=32 k=3 pad=1 bias=0\n"     // padded-plane path: int8
                         "bn\n"
                         "relu\n"
                         "conv out=48 k=3 pad=1 stride=2\n"   // im2col: int8
                         "relu\n"
                         "conv out=32 k=3 pad=1 groups=2\n"   // grouped: bfloat16
                         "relu\n"
                         "conv out=32 k=3 pad=1\n"            // 10x10, im2col: int8
                         "conv out=32 k=1 stride=2 bias=0\n"  // 1x1, strided (a shortcut): int8
                         "flatten\n"
                         "linear out=40\n"                   // 800 -> 40: int8 rows
                         "relu\n"
                         "linear out=7\n";

static void check_conv(int ic, int oc, int h, int w, int k, int stride, int pad, int n, uint64_t seed) {
    char err[EMO_ERRLEN], text[200];
    snprintf(text, sizeof text, "input c=%d h=%d w=%d\nconv out=%d k=%d stride=%d pad=%d\n", ic, h, w,
             oc, k, stride, pad);
    emo_set_int8(1);
    Net *net = net_parse(text, "i8conv", err, sizeof err);
    CHECK(net != NULL, "%s", err);
    if (!net) return;
    Rng rng;
    rng_seed(&rng, seed);
    net_init(net, &rng);
    net_fold_bn(net);
    int oh = net->out.h, ow = net->out.w, K = ic * k * k;
    size_t in = (size_t)ic * h * w;
    real *x = malloc(sizeof(real) * in * n);
    for (size_t i = 0; i < in * n; i++) x[i] = seed & 1 ? 3 * rng_uniform(&rng) : 2 * rng_uniform(&rng) - 0.7f;
    const real *W = NULL, *B = NULL;
    for (int t = 0; t < net->ntensors; t++) {
        if (net->tensors[t].ndim == 4) W = net_tensor_data(net, &net->tensors[t]);
        if (net->tensors[t].ndim == 1) B = net_tensor_data(net, &net->tensors[t]);
    }
    CHECK(W && B, "conv weights and bias");
    CHECK(net_reserve(net, n, 0, err, sizeof err) == 0, "%s", err);
    const real *y = net_forward(net, x, n, 0, NULL);
    if (!W || !B || !y) {
        free(x);
        net_free(net);
        emo_set_int8(0);
        return;
    }
    EmoQuant q[3];   // each image its own scale
    int *xb = malloc(sizeof(int) * in * n), *a = malloc(sizeof(int) * K);
    for (int i = 0; i < n; i++) {
        float lo, hi;
        emo_range(x + i * in, in, &lo, &hi);
        q[i] = emo_quant(lo, hi);
        float inv = 1 / q[i].scale;
        for (size_t j = i * in; j < (i + 1) * in; j++)
            xb[j] = clampi((int)nearbyintf(x[j] * inv) + q[i].zero, 0, 255) - q[i].zero;
    }
    double worst = 0;
    for (int o = 0; o < oc; o++) {
        float mx = 0;
        for (int j = 0; j < K; j++) mx = fmaxf(mx, fabsf(W[(size_t)o * K + j]));
        float sa = mx > 0 ? mx / 127 : 1;
        for (int j = 0; j < K; j++) a[j] = clampi((int)nearbyintf(W[(size_t)o * K + j] / sa), -127, 127);
        for (int i = 0; i < n; i++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    int64_t acc = 0, mag = 0;
                    for (int c = 0; c < ic; c++)
                        for (int ty = 0; ty < k; ty++)
                            for (int tx = 0; tx < k; tx++) {
                                int iy = oy * stride - pad + ty, ix = ox * stride - pad + tx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                int av = a[(c * k + ty) * k + tx], bv = xb[(((size_t)i * ic + c) * h + iy) * w + ix];
                                acc += av * bv;
                                mag += llabs((long long)av * bv);
                            }
                    double want = (double)sa * q[i].scale * (double)acc + B[o];
                    double got = y[(((size_t)i * oc + o) * oh + oy) * ow + ox];
                    double tol = 1e-5 * sa * q[i].scale * (double)mag + 1e-6 * fabs(B[o]) + 1e-7;
                    double e = fabs(got - want) / tol;
                    if (e > worst) worst = e;
                }
    }
    CHECK(worst <= 1, "conv %d->%d k%d stride %d pad %d on %dx%d, batch %d: error %.3g x the tolerance",
          ic, oc, k, stride, pad, h, w, n, worst);
    free(a);
    free(xb);
    free(x);
    net_free(net);
    emo_set_int8(0);
    emo_set_bf16(0);
}

static void net_out(int mode, int n, real *y) {
    char err[EMO_ERRLEN];
    emo_set_int8(0);
    emo_set_bf16(mode > 0);
    if (mode == 2) CHECK(emo_set_int8(1) == 0 && emo_bf16(), "int8 on (and bfloat16 with it)");
    Net *net = net_parse(NET, "i8net", err, sizeof err);
    CHECK(net != NULL, "%s", err);
    if (!net) return;
    Rng rng;
    rng_seed(&rng, 21);
    net_init(net, &rng);
    for (size_t i = 0; i < net->nbufs; i++) net->bufs[i] = 0.5f + rng_uniform(&rng);
    net_fold_bn(net);
    size_t in = (size_t)shape_size(net->in);
    real *x = malloc(sizeof(real) * in * n);
    for (size_t i = 0; i < in * n; i++) x[i] = 2 * rng_uniform(&rng) - 1;   // signed input
    CHECK(net_reserve(net, n, 0, err, sizeof err) == 0, "%s", err);
    memcpy(y, net_forward(net, x, n, 0, NULL), sizeof(real) * 7 * n);
    free(x);
    net_free(net);
    emo_set_int8(0);
    emo_set_bf16(0);
}

static void check_net(void) {
    for (int n = 1; n <= 3; n += 2) {
        real y0[21], y1[21], y2[21];
        double y0d[21];
        net_out(0, n, y0);
        net_out(1, n, y1);
        net_out(2, n, y2);
        for (int i = 0; i < 7 * n; i++) y0d[i] = y0[i];
        double e1 = rel_l2d(y1, y0d, 7 * (size_t)n), e2 = rel_l2d(y2, y0d, 7 * (size_t)n);
        CHECK(e2 < 0.05, "frozen network, batch %d: int8 against float32 %.3g", n, e2);
        CHECK(memcmp(y1, y2, sizeof(real) * 7 * n) != 0, "batch %d: int8 took no 8-bit path", n);
        printf("test_gemm_i8: frozen network, batch %d, relative L2 to float32: bfloat16 %.2g, "
               "int8 %.2g\n", n, e1, e2);
    }
}

int main(void) {
    if (!emo_int8_available()) {
        printf("test_gemm_i8: SKIPPED, this CPU (or kernel) lacks AVX512-VNNI or AVX512-BF16\n");
        return 77;
    }
    static const int shapes[][3] = {
        {16, 16, 32}, {32, 32, 64},  {17, 33, 40},   {64, 576, 288},  {48, 100, 1100},
        {128, 300, 64}, {31, 16, 600}, {100, 40, 2305}, {256, 36, 2304}, {33, 72, 99},
    };
    uint64_t seed = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 4; t++, seed++) check(shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t >> 1, seed);
#pragma omp parallel for num_threads(2)
    for (int s = 0; s < 10; s++) check(shapes[s][0], shapes[s][1], shapes[s][2], s & 1, 0, 100 + s);
    static const int rshapes[][3] = {{7, 1, 64}, {33, 2, 100}, {512, 4, 2304}, {65, 5, 129}, {40, 9, 800}};
    for (size_t s = 0; s < sizeof rshapes / sizeof *rshapes; s++)
        for (int sign = 0; sign < 2; sign++, seed++) check_rows(rshapes[s][0], rshapes[s][1], rshapes[s][2], sign, seed);
    check_zero();
    static const int cshapes[][7] = {   // ic, oc, h, w, k, stride, pad
        {32, 64, 48, 48, 3, 2, 1}, {32, 64, 48, 48, 1, 2, 0}, {128, 256, 6, 6, 3, 1, 1},
        {5, 17, 11, 13, 3, 2, 1},  {7, 20, 13, 9, 5, 2, 2},   {9, 16, 10, 11, 2, 2, 0},
        {4, 24, 14, 15, 3, 3, 1},  {40, 16, 5, 7, 1, 1, 0},   {6, 18, 9, 8, 3, 1, 2},
        {32, 32, 48, 48, 3, 1, 1}, {5, 40, 12, 12, 5, 1, 2},  {64, 48, 10, 10, 3, 1, 0},
    };
    for (size_t s = 0; s < sizeof cshapes / sizeof *cshapes; s++)
        for (int n = 1; n <= 3; n++, seed++) {
            const int *c = cshapes[s];
            check_conv(c[0], c[1], c[2], c[3], c[4], c[5], c[6], n, seed);
        }
    check_net();
    CHECK(!emo_int8(), "int8 off");
    return test_result("test_gemm_i8");
}
