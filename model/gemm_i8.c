// gemm_i8.c: 8-bit integer matrix products for the convolutions of frozen inference networks,
// with AVX512-VNNI (VPDPBUSD: 16 lanes x 4 products of an unsigned and a signed byte, summed
// into int32; twice VDPBF16PS's products per instruction, on Ice Lake and later Xeons and on
// AMD Zen 4 and later).
//
// C (M x N) = A B, with A a fixed weight matrix and B a layer's input as its im2col rows
// (a RowMap, layer.h):
// - A is quantized once, row by row (one scale per output channel): a[m][k] = round(A[m][k] /
//   sa[m]) in [-127, 127], sa[m] = max_k |A[m][k]| / 127, and packed into tiles.
// - B is quantized on each call with one scale for the whole matrix, from the range [lo, hi]
//   of the values it is made of (the caller scans the layer's input, which is smaller than its
//   im2col matrix): b = round(B / sb) + z in [0, 255], with z = 0, sb = hi / 255 for an input
//   that is never negative (after a ReLU: every convolution but a network's first), else
//   z = 128, sb = max(-lo, hi) / 127 (emo_quant). A zero (padding) is exactly z. Either while
//   packing, from float rows (emo_gemm_i8: im2col's), or beforehand into a convolution's
//   padded planes, 4 channels interleaved, which emo_conv_i8 reads in place for every tap
//   (below: most convolutions take that path).
// - C[m][n] = sa[m] sb (sum_k a[m][k] b[k][n] - z sum_k a[m][k]), the last sum kept per row
//   and taken off in float32 after the k blocks.
//
// Tiles are 1 KB, as the bfloat16 ones (gemm.c): an A tile holds 16 rows x 64 k (row-major:
// dword q of a row is its k = 4q .. 4q+3), a B tile 64 k x 16 columns, dword [q][j] holding
// column j's k = 4q .. 4q+3, the order VPDPBUSD wants. The register kernel broadcasts one dword
// of A (4 weights of one row) against a row of a B tile (4 inputs of 16 columns), 8 rows x 32
// columns in 16 int32 accumulators, and scales them into float32 C at the end of each k block.
// Blocking, packing and edges follow gemm.c.
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
enum { KC8 = 512, NC8 = 256, T8 = 1024 };   // KC8: multiple of 64; T8: bytes per tile

struct I8Pack {
    int M, K;
    uint8_t *a;        // the tiles (int8 values), by k block, 32-row strip, row tile, k tile
    float *scale;      // (M) sa
    int32_t *rowsum;   // (M) sum_k a[m][k]
    size_t *boff;      // emo_pack_i8_conv's: where each k quad's row starts in the input (bytes)
};

static int g_avail = -1, g_on;

// AVX512-F, -BW, -VL and -VNNI in CPUID, and the zmm state enabled by the OS.
static int vnni_probe(void) {
    unsigned a, b, c, d;
    if (!emo_zmm_enabled()) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31)) && (c & (1u << 11));
}

int emo_int8_available(void) {
    if (g_avail < 0) g_avail = sizeof(real) == sizeof(float) && vnni_probe() && emo_bf16_available();
    return g_avail;
}

int emo_set_int8(int on) {
    if (on && (!emo_int8_available() || emo_set_bf16(1))) return -1;
    g_on = on != 0;
    return 0;
}

int emo_int8(void) { return g_on; }

#ifndef EMOCAM_F64

static size_t packed8_at(int M, int k0, int m0, int nkt) {
    return ((size_t)(k0 / 64) * ((M + 31) / 32) * 2 + (size_t)(m0 / 32) * 2 * nkt) * T8;
}

// The byte of A(m, k) in the packing: its k block, 32-row strip, row tile, k tile, row, k.
static size_t a8_at(int M, int K, int m, int k) {
    int k0 = k / KC8 * KC8, kc = K - k0 < KC8 ? K - k0 : KC8, nkt = (kc + 63) / 64;
    return packed8_at(M, k0, m / 32 * 32, nkt) + ((size_t)(m % 32 / 16) * nkt + (k - k0) / 64) * T8 +
           (size_t)(m % 16) * 64 + (k - k0) % 64;
}

// One row of weights to 8 bits: q[k] = round(row[k] / s) in [-127, 127], s = max |row| / 127
// (1 for a zero row); returns s, and the sum of q in *sum.
static float quant_row(const real *row, int K, int8_t *q, int32_t *sum) {
    float mx = 0;
    for (int k = 0; k < K; k++) mx = fmaxf(mx, fabsf(row[k]));
    float s = mx > 0 ? mx / 127 : 1;
    int32_t t = 0;
    for (int k = 0; k < K; k++) {
        int v = (int)nearbyintf(row[k] / s);
        q[k] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
        t += q[k];
    }
    *sum = t;
    return s;
}

// A's bytes (len, zeroed), scales and row sums; 0, or -1 when out of memory (i8_release frees
// what was allocated).
static int i8_alloc(I8Pack *p, int M, int K, size_t len) {
    p->M = M, p->K = K;
    if (!(p->a = aligned_alloc(64, len)) || !(p->scale = malloc(sizeof(float) * M)) ||
        !(p->rowsum = malloc(sizeof(int32_t) * M)))
        return -1;
    memset(p->a, 0, len);
    return 0;
}

static void i8_release(I8Pack *p) {
    free(p->boff);
    free(p->a);
    free(p->scale);
    free(p->rowsum);
}

I8Pack *emo_pack_i8(int M, int K, const real *A, int lda) {
    I8Pack *p = calloc(1, sizeof *p);
    size_t len = (size_t)((M + 31) / 32) * 2 * ((K + 63) / 64) * T8;
    int8_t *q = malloc((size_t)K);
    if (!p || !q || i8_alloc(p, M, K, len)) {
        free(q);
        emo_free_i8(p);
        return NULL;
    }
    for (int m = 0; m < M; m++) {
        p->scale[m] = quant_row(A + (size_t)m * lda, K, q, &p->rowsum[m]);
        for (int k = 0; k < K; k++) p->a[a8_at(M, K, m, k)] = (uint8_t)q[k];
    }
    free(q);
    return p;
}

void emo_free_i8(I8Pack *p) {
    if (!p) return;
    i8_release(p);
    free(p);
}

VNNI static void minmax_vnni(const float *x, size_t n, float *lo, float *hi) {
    __m512 vl = _mm512_set1_ps(0), vh = _mm512_set1_ps(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        vl = _mm512_min_ps(vl, v);
        vh = _mm512_max_ps(vh, v);
    }
    float l = _mm512_reduce_min_ps(vl), h = _mm512_reduce_max_ps(vh);
    for (; i < n; i++) l = fminf(l, x[i]), h = fmaxf(h, x[i]);
    *lo = l, *hi = h;
}

void emo_range(const real *x, size_t n, float *lo, float *hi) {
    if (emo_int8_available()) {
        minmax_vnni(x, n, lo, hi);
        return;
    }
    float l = 0, h = 0;
    for (size_t i = 0; i < n; i++) l = fminf(l, x[i]), h = fmaxf(h, x[i]);
    *lo = l, *hi = h;
}

EmoQuant emo_quant(float lo, float hi) {
    EmoQuant q;
    if (lo >= 0) q.zero = 0, q.scale = hi / 255;
    else q.zero = 128, q.scale = fmaxf(-lo, hi) / 127;
    if (!(q.scale > 0) || !isfinite(q.scale)) q.scale = 1;
    return q;
}

typedef struct {
    float inv;   // 1 / sb
    int z;       // zero point, 0 or 128
} Quant;

static Quant quant_of(EmoQuant e) { return (Quant){1 / e.scale, e.zero}; }

static inline __mmask16 mask16(int n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

// 16 floats (zeros past n) quantized to 16 int32 in [0, 255].
VNNI static inline __m512i quant16(const float *s, int n, __m512 inv, __m512i z) {
    __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask16(n), s),
                                                                 inv)),
                                 z);
    return _mm512_min_epi32(_mm512_max_epi32(v, _mm512_setzero_si512()), _mm512_set1_epi32(255));
}

// B's k [k0, k0 + kc) x columns [n0, n0 + 16 nct) as nct x nkt tiles, column-tile-major.
// Rows past K and columns past N are zeros (the A side is zero there, so any value would do).
VNNI static void pack_b8(RowMap b, int N, int K, int n0, int nct, int k0, int kc, Quant q,
                         uint8_t *out) {
    int nkt = (kc + 63) / 64;
    const __m512 inv = _mm512_set1_ps(q.inv);
    const __m512i z = _mm512_set1_epi32(q.z);
    for (int kt = 0; kt < nkt; kt++)
        for (int qd = 0; qd < 16; qd++) {
            const float *rp[4];
            for (int i = 0; i < 4; i++) {
                int k = k0 + kt * 64 + qd * 4 + i;
                rp[i] = k < K ? rowmap_row(b, k) : NULL;
            }
            for (int ct = 0; ct < nct; ct++) {
                int c = n0 + ct * 16, nv = N - c;
                __m512i d = _mm512_setzero_si512();
                for (int i = 0; i < 4; i++)
                    if (rp[i]) d = _mm512_or_si512(d, _mm512_slli_epi32(quant16(rp[i] + c, nv, inv, z), 8 * i));
                _mm512_store_si512(out + ((size_t)ct * nkt + kt) * T8 + qd * 64, d);
            }
        }
}

VNNI static void quantize_vnni(const float *x, size_t n, Quant q, uint8_t *out) {
    const __m512 inv = _mm512_set1_ps(q.inv);
    const __m512i z = _mm512_set1_epi32(q.z);
    for (size_t i = 0; i < n; i += 16) {
        int nv = n - i < 16 ? (int)(n - i) : 16;
        _mm_mask_storeu_epi8(out + i, mask16(nv), _mm512_cvtusepi32_epi8(quant16(x + i, nv, inv, z)));
    }
}

void emo_quantize(const real *x, size_t n, EmoQuant q, uint8_t *out) {
    Quant u = quant_of(q);
    if (emo_int8_available()) {
        quantize_vnni(x, n, u, out);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int v = (int)nearbyintf(x[i] * u.inv) + u.z;
        out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

// acc += the 4-byte dot products of u (unsigned) and s (signed), lane by lane. In assembly:
// with the intrinsic, GCC 12 copies every accumulator to another register (and some to the
// stack) after each VPDPBUSD, which halves the kernel's speed.
VNNI static inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
    return acc;
}

// C[32 x 32 at c] (+)= scale[r] * (A strip . B) for 2 row tiles x 2 column tiles. B's quads
// of k (4 k of 16 columns, 64 bytes) are where boff says, from b: quad i of k tile kt (i = 16 kt
// + q) at b + boff[i] for the first 16 columns, b1 bytes further for the next 16. Packed tiles
// (pack_b8) are boff[i] = 64 i, b1 = nkt tiles; a convolution's planes read in place
// (emo_conv_i8) are its taps' offsets, b1 = 16 positions.
#define ROW8(i)                                                                    \
    do {                                                                           \
        __m512i u = _mm512_set1_epi32((int)at[(i) * 16 + q]);                      \
        c##i##0 = dpbusd(c##i##0, v0, u);                                          \
        c##i##1 = dpbusd(c##i##1, v1, u);                                          \
    } while (0)
#define STORE8(i)                                                                  \
    do {                                                                           \
        float *cr = c + (size_t)(r0 + (i)) * ldc;                                  \
        __m512 s = _mm512_set1_ps(scale[r0 + (i)]);                                \
        __m512 f0 = _mm512_mul_ps(_mm512_cvtepi32_ps(c##i##0), s);                 \
        __m512 f1 = _mm512_mul_ps(_mm512_cvtepi32_ps(c##i##1), s);                 \
        if (accumulate) {                                                          \
            f0 = _mm512_add_ps(f0, _mm512_loadu_ps(cr));                           \
            f1 = _mm512_add_ps(f1, _mm512_loadu_ps(cr + 16));                      \
        }                                                                          \
        _mm512_storeu_ps(cr, f0);                                                  \
        _mm512_storeu_ps(cr + 16, f1);                                             \
    } while (0)
VNNI static void kernel8(const uint8_t *a, const uint8_t *b, const size_t *boff, size_t b1,
                         int nkt, const float *scale, float *c, int ldc, int accumulate) {
    const uint32_t *A = (const uint32_t *)a;
    for (int r0 = 0; r0 < 32; r0 += 8) {
        __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00,
                c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00,
                c60 = c00, c61 = c00, c70 = c00, c71 = c00;
        const uint32_t *ar = A + (size_t)(r0 / 16) * nkt * (T8 / 4) + (r0 % 16) * 16;
        for (int kt = 0; kt < nkt; kt++) {
            const uint32_t *at = ar + (size_t)kt * (T8 / 4);
            const size_t *bo = boff + kt * 16;
            for (int q = 0; q < 16; q++) {
                const uint8_t *bq = b + bo[q];
                __m512i v0 = _mm512_loadu_si512(bq), v1 = _mm512_loadu_si512(bq + b1);
                ROW8(0);
                ROW8(1);
                ROW8(2);
                ROW8(3);
                ROW8(4);
                ROW8(5);
                ROW8(6);
                ROW8(7);
            }
        }
        STORE8(0);
        STORE8(1);
        STORE8(2);
        STORE8(3);
        STORE8(4);
        STORE8(5);
        STORE8(6);
        STORE8(7);
    }
}
#undef ROW8
#undef STORE8

// The same for a last, odd 16-column tile (C 32 x 16): 16 rows at a time.
VNNI static void kernel8_16(const uint8_t *a, const uint8_t *b, const size_t *boff, int nkt,
                            const float *scale, float *c, int ldc, int accumulate) {
    const uint32_t *A = (const uint32_t *)a;
    for (int rt = 0; rt < 2; rt++) {
        __m512i acc[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_si512();
        const uint32_t *ar = A + (size_t)rt * nkt * (T8 / 4);
        for (int kt = 0; kt < nkt; kt++) {
            const uint32_t *at = ar + (size_t)kt * (T8 / 4);
            const size_t *bo = boff + kt * 16;
            for (int q = 0; q < 16; q++) {
                __m512i v = _mm512_loadu_si512(b + bo[q]);
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    acc[i] = dpbusd(acc[i], v, _mm512_set1_epi32((int)at[i * 16 + q]));
            }
        }
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            float *cr = c + (size_t)(rt * 16 + i) * ldc;
            __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i]), _mm512_set1_ps(scale[rt * 16 + i]));
            if (accumulate) f = _mm512_add_ps(f, _mm512_loadu_ps(cr));
            _mm512_storeu_ps(cr, f);
        }
    }
}

// One tile of C, mr <= 32 rows x nr <= w columns (w 32, or 16 for kernel8_16) at cb: straight
// into C when whole, else through a 32 x 32 buffer (with C's partial sums when accumulating).
VNNI static void tile8(const uint8_t *ap, const uint8_t *b, const size_t *boff, size_t b1, int nkt,
                       const float *sc, int w, int mr, int nr, float *cb, int ldc, int accumulate) {
    if (mr == 32 && nr == w) {
        if (w == 16) kernel8_16(ap, b, boff, nkt, sc, cb, ldc, accumulate);
        else kernel8(ap, b, boff, b1, nkt, sc, cb, ldc, accumulate);
        return;
    }
    _Alignas(64) float edge[32 * 32];
    if (accumulate) {
        memset(edge, 0, sizeof edge);
        for (int r = 0; r < mr; r++) memcpy(edge + r * 32, cb + (size_t)r * ldc, (size_t)nr * sizeof(float));
    }
    if (w == 16) kernel8_16(ap, b, boff, nkt, sc, edge, 32, accumulate);
    else kernel8(ap, b, boff, b1, nkt, sc, edge, 32, accumulate);
    for (int r = 0; r < mr; r++) memcpy(cb + (size_t)r * ldc, edge + r * 32, (size_t)nr * sizeof(float));
}

// C -= sa[m] sb z sum_k a[m][k]: the zero point's share, row by row (nothing when z is 0).
static void sub_zero(const I8Pack *p, EmoQuant e, int N, float *C, int ldc) {
    if (!e.zero) return;
    for (int m = 0; m < p->M; m++) {
        float d = p->scale[m] * e.scale * (float)e.zero * (float)p->rowsum[m];
        float *cr = C + (size_t)m * ldc;
        for (int n = 0; n < N; n++) cr[n] -= d;
    }
}

static _Thread_local uint8_t *t_buf;
static _Thread_local size_t t_cap;

// B as float rows, quantized while packed.
VNNI static void gemm_i8(const I8Pack *p, int N, const RowMap *bf, EmoQuant e, float *C, int ldc) {
    int M = p->M, K = p->K;
    Quant q = quant_of(e);
    float sb = e.scale;
    int nc_max = N < NC8 ? (N + 15) / 16 * 16 : NC8, kc_max = K < KC8 ? (K + 63) / 64 * 64 : KC8;
    size_t need = (size_t)nc_max * kc_max;
    if (need > t_cap) {
        free(t_buf);
        t_buf = aligned_alloc(64, (need + 63) / 64 * 64);
        t_cap = t_buf ? need : 0;
    }
    uint8_t *bp = t_buf;
    if (!bp) {   // out of memory for the packing buffer: the same product, one at a time
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                int64_t acc = 0;
                for (int k = 0; k < K; k++) {
                    int8_t a = (int8_t)p->a[a8_at(M, K, m, k)];
                    int b = (int)nearbyintf(rowmap_row(*bf, k)[n] * q.inv) + q.z;
                    acc += a * (b < 0 ? 0 : b > 255 ? 255 : b);
                }
                C[(size_t)m * ldc + n] = p->scale[m] * sb * (float)(acc - (int64_t)q.z * p->rowsum[m]);
            }
        return;
    }
    size_t seq[KC8 / 64 * 16];   // the packed tiles' quads, one after another
    for (int i = 0; i < KC8 / 64 * 16; i++) seq[i] = (size_t)i * 64;
    float sc[32];
    for (int k0 = 0; k0 < K; k0 += KC8) {
        int kc = K - k0 < KC8 ? K - k0 : KC8, nkt = (kc + 63) / 64;
        for (int n0 = 0; n0 < N; n0 += NC8) {
            int nc = N - n0 < NC8 ? N - n0 : NC8, nct = (nc + 15) / 16;
            pack_b8(*bf, N, K, n0, nct, k0, kc, q, bp);
            for (int m0 = 0; m0 < M; m0 += 32) {
                const uint8_t *ap = p->a + packed8_at(M, k0, m0, nkt);
                int mr = M - m0 < 32 ? M - m0 : 32;
                for (int r = 0; r < 32; r++) sc[r] = r < mr ? p->scale[m0 + r] * sb : 0;
                for (int j = 0; j < nct; j += 2) {
                    int c0 = n0 + j * 16, w = j + 1 < nct ? 32 : 16, nr = N - c0 < w ? N - c0 : w;
                    tile8(ap, bp + (size_t)j * nkt * T8, seq, (size_t)nkt * T8, nkt, sc, w, mr, nr,
                          C + (size_t)m0 * ldc + c0, ldc, k0 > 0);
                }
            }
        }
    }
    sub_zero(p, e, N, C, ldc);
}

void emo_gemm_i8(const I8Pack *a, int N, RowMap B, float lo, float hi, real *C, int ldc) {
    gemm_i8(a, N, &B, emo_quant(lo, hi), C, ldc);
}

// ---- a convolution's product straight from its input: no packing of B.
// The input is quantized once into quads of channels, interleaved byte by byte: position p of
// quad Q's padded plane is a dword holding channels 4Q .. 4Q+3 there, the order VPDPBUSD wants
// for 4 values of k. With k ordered (tap, channel), 4 consecutive k are one tap and 4
// channels, so the B side of every 16 columns is one 64-byte load from the plane, at the tap's
// offset: the tiles a packing would build (k*k times the input's bytes, every call) are read
// in place. At stride s the padded planes are split into s x s phases (padded row
// s*r + py, column s*q + px is phase (py, px)'s pixel (r, q); planes by phase, then quad), and
// tap (ty, tx) of output (oy, ox) is phase (ty % s, tx % s)'s pixel (oy + ty/s, ox + tx/s):
// again one offset a tap. The whole k range is summed in int32 at once (|sum| < 2^31 while
// K < 65,000).
I8Pack *emo_pack_i8_conv(int M, int C, int k, int s, int wq, size_t plane, const real *W) {
    int kk = k * k, c4 = (C + 3) / 4, K = kk * c4 * 4, nkt = (K + 63) / 64;
    if ((size_t)K >= 65000) return NULL;
    I8Pack *p = calloc(1, sizeof *p);
    int8_t *q = malloc((size_t)C * kk);
    if (!p || !q || i8_alloc(p, M, K, (size_t)((M + 31) / 32) * 2 * nkt * T8) ||
        !(p->boff = malloc(sizeof(size_t) * nkt * 16))) {
        free(q);
        emo_free_i8(p);
        return NULL;
    }
    for (int m = 0; m < M; m++) {   // row m as a one-block packing (KC8 = K) would lay it out
        p->scale[m] = quant_row(W + (size_t)m * C * kk, C * kk, q, &p->rowsum[m]);
        uint8_t *strip = p->a + (size_t)(m / 32) * 2 * nkt * T8 + (size_t)(m % 32 / 16) * nkt * T8;
        for (int c = 0; c < C; c++)
            for (int t = 0; t < kk; t++) {
                int kq = (t * c4 + c / 4) * 4 + c % 4;
                strip[(size_t)(kq / 64) * T8 + (m % 16) * 64 + kq % 64] = (uint8_t)q[c * kk + t];
            }
    }
    for (int i = 0; i < nkt * 16; i++) {   // quads past K: any readable row (A is zero there)
        int t = i < kk * c4 ? i / c4 : 0, c = i < kk * c4 ? i % c4 : 0, ty = t / k, tx = t % k;
        int phase = ty % s * s + tx % s;
        p->boff[i] = (((size_t)phase * c4 + c) * plane + (size_t)(ty / s) * wq + tx / s) * 4;
    }
    free(q);
    return p;
}

VNNI static void quantize4_vnni(const float *x, size_t cstride, int nch, size_t n, Quant q, uint8_t *out) {
    const __m512 inv = _mm512_set1_ps(q.inv);
    const __m512i z = _mm512_set1_epi32(q.z);
    for (size_t i = 0; i < n; i += 16) {
        int nv = n - i < 16 ? (int)(n - i) : 16;
        __m512i d = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            __m512i v = c < nch ? quant16(x + c * cstride + i, nv, inv, z) : z;
            d = _mm512_or_si512(d, _mm512_slli_epi32(v, 8 * c));
        }
        _mm512_mask_storeu_epi32(out + 4 * i, mask16(nv), d);
    }
}

void emo_quantize4(const real *x, size_t cstride, int nch, size_t n, EmoQuant q, uint8_t *out) {
    quantize4_vnni(x, cstride, nch, n, quant_of(q), out);
}

void emo_prefetch_i8(const I8Pack *p) {
    size_t strip = (size_t)2 * ((p->K + 63) / 64) * T8;
    for (size_t o = 0; o < strip; o += 64) _mm_prefetch((const char *)p->a + o, _MM_HINT_T0);
}

VNNI void emo_conv_i8(const I8Pack *p, int N, const uint8_t *x4, EmoQuant e, real *C, int ldc) {
    int M = p->M, nkt = (p->K + 63) / 64, ntiles = (N + 31) / 32;
    size_t strip = (size_t)2 * nkt * T8, per = (strip / ntiles + 63) / 64 * 64;
    float sc[32];
    for (int m0 = 0; m0 < M; m0 += 32) {
        const uint8_t *ap = p->a + (size_t)(m0 / 32) * strip;
        const uint8_t *next = m0 + 32 < M ? ap + strip : NULL;
        int mr = M - m0 < 32 ? M - m0 : 32;
        for (int r = 0; r < 32; r++) sc[r] = r < mr ? p->scale[m0 + r] * e.scale : 0;
        for (int c0 = 0; c0 < N; c0 += 32) {
            int nr = N - c0 < 32 ? N - c0 : 32;
            if (next)   // the next strip's weights, a share each tile, while this one runs
                for (size_t o = (size_t)c0 / 32 * per, end = o + per; o < end && o < strip; o += 64)
                    _mm_prefetch((const char *)next + o, _MM_HINT_T0);
            tile8(ap, x4 + (size_t)c0 * 4, p->boff, 64, nkt, sc, nr <= 16 ? 16 : 32, mr, nr,
                  C + (size_t)m0 * ldc + c0, ldc, 0);
        }
    }
    sub_zero(p, e, N, C, ldc);
}

// ---- a linear layer's product: few vectors, so A's bytes are the cost, not the multiplies.
// A's rows quantized as above but stored plainly, each padded with zeros to a multiple of 64
// bytes; each input vector quantized on its own (one scale from its own range), into bytes
// padded the same way. One VPDPBUSD takes 64 products of a row and a vector; two rows at a
// time against up to four vectors keep 8 chains of sums in flight while A streams past once.
struct I8Rows {
    I8Pack w;   // a: plain rows of K64 bytes (int8 values), not tiles
    int K64;    // K rounded up to 64, the row stride of w.a
};

I8Rows *emo_pack_i8_rows(int M, int K, const real *A, int lda) {
    I8Rows *r = calloc(1, sizeof *r);
    int K64 = (K + 63) / 64 * 64;
    if (!r || i8_alloc(&r->w, M, K, (size_t)M * K64)) {
        emo_free_i8_rows(r);
        return NULL;
    }
    r->K64 = K64;
    int8_t *a = (int8_t *)r->w.a;
    for (int m = 0; m < M; m++)
        r->w.scale[m] = quant_row(A + (size_t)m * lda, K, a + (size_t)m * K64, &r->w.rowsum[m]);
    return r;
}

void emo_free_i8_rows(I8Rows *r) {
    if (!r) return;
    i8_release(&r->w);
    free(r);
}

// Y[j][m] (j < nv <= 4) = sa[m] sb[j] (sum_k a[m][k] xq[j][k] - z[j] rowsum[m]).
#define ROWS_DOT(J)                                                                \
    do {                                                                           \
        if ((J) < nv) {                                                            \
            __m512i u = _mm512_load_si512(xq + (size_t)(J) * K64 + k);             \
            s0##J = dpbusd(s0##J, u, w0);                                          \
            s1##J = dpbusd(s1##J, u, w1);                                          \
        }                                                                          \
    } while (0)
#define ROWS_OUT(J)                                                                \
    do {                                                                           \
        if ((J) < nv) {                                                            \
            float f = sb[J];                                                       \
            int32_t zr0 = z[J] * p->rowsum[m], zr1 = m1 < M ? z[J] * p->rowsum[m1] : 0; \
            Y[(size_t)(J) * ldy + m] =                                             \
                p->scale[m] * f * (float)(_mm512_reduce_add_epi32(s0##J) - zr0);   \
            if (m1 < M)                                                            \
                Y[(size_t)(J) * ldy + m1] =                                        \
                    p->scale[m1] * f * (float)(_mm512_reduce_add_epi32(s1##J) - zr1); \
        }                                                                          \
    } while (0)
VNNI static void rows4(const I8Rows *r, int nv, const uint8_t *xq, const float *sb, const int *z,
                       float *Y, int ldy) {
    const I8Pack *p = &r->w;
    int M = p->M, K64 = r->K64;
    for (int m = 0; m < M; m += 2) {
        int m1 = m + 1;
        const int8_t *a0 = (const int8_t *)p->a + (size_t)m * K64, *a1 = m1 < M ? a0 + K64 : a0;
        __m512i s00 = _mm512_setzero_si512(), s01 = s00, s02 = s00, s03 = s00;
        __m512i s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        for (int k = 0; k < K64; k += 64) {
            __m512i w0 = _mm512_load_si512(a0 + k), w1 = _mm512_load_si512(a1 + k);
            ROWS_DOT(0);
            ROWS_DOT(1);
            ROWS_DOT(2);
            ROWS_DOT(3);
        }
        ROWS_OUT(0);
        ROWS_OUT(1);
        ROWS_OUT(2);
        ROWS_OUT(3);
    }
}
#undef ROWS_DOT
#undef ROWS_OUT

static _Thread_local uint8_t *r_buf;
static _Thread_local size_t r_cap;

void emo_gemv_i8(const I8Rows *r, int N, const real *X, int ldx, real *Y, int ldy) {
    const I8Pack *p = &r->w;
    int K = p->K, K64 = r->K64;
    size_t need = (size_t)4 * K64;
    if (need > r_cap) {
        free(r_buf);
        r_buf = aligned_alloc(64, need);
        r_cap = r_buf ? need : 0;
    }
    for (int j0 = 0; j0 < N; j0 += 4) {
        int nv = N - j0 < 4 ? N - j0 : 4;
        float sb[4];
        int z[4];
        for (int j = 0; j < nv; j++) {
            const real *x = X + (size_t)(j0 + j) * ldx;
            float lo, hi;
            emo_range(x, (size_t)K, &lo, &hi);
            EmoQuant q = emo_quant(lo, hi);
            sb[j] = q.scale, z[j] = q.zero;
            if (r_buf) {
                quantize_vnni(x, (size_t)K, quant_of(q), r_buf + (size_t)j * K64);
                memset(r_buf + (size_t)j * K64 + K, 0, (size_t)(K64 - K));   // A is zero there
            }
        }
        if (r_buf) {
            rows4(r, nv, r_buf, sb, z, Y + (size_t)j0 * ldy, ldy);
            continue;
        }
        // out of memory for the bytes: the same product, one at a time
        for (int j = 0; j < nv; j++) {
            const real *x = X + (size_t)(j0 + j) * ldx;
            Quant q = quant_of((EmoQuant){sb[j], z[j]});
            for (int m = 0; m < p->M; m++) {
                int64_t acc = 0;
                for (int k = 0; k < K; k++) {
                    int b = (int)nearbyintf(x[k] * q.inv) + q.z;
                    acc += (int64_t)(int8_t)p->a[(size_t)m * K64 + k] * (b < 0 ? 0 : b > 255 ? 255 : b);
                }
                Y[(size_t)(j0 + j) * ldy + m] =
                    p->scale[m] * sb[j] * (float)(acc - (int64_t)q.z * p->rowsum[m]);
            }
        }
    }
}

#else   // the double build has no int8 path

I8Pack *emo_pack_i8(int M, int K, const real *A, int lda) {
    (void)M, (void)K, (void)A, (void)lda;
    return NULL;
}
void emo_free_i8(I8Pack *p) { (void)p; }
void emo_range(const real *x, size_t n, float *lo, float *hi) {
    (void)x, (void)n;
    *lo = *hi = 0;
}
void emo_gemm_i8(const I8Pack *a, int N, RowMap B, float lo, float hi, real *C, int ldc) {
    (void)a, (void)N, (void)B, (void)lo, (void)hi, (void)C, (void)ldc;
    abort();
}
EmoQuant emo_quant(float lo, float hi) {
    (void)lo, (void)hi;
    return (EmoQuant){1, 0};
}
void emo_quantize(const real *x, size_t n, EmoQuant q, uint8_t *out) {
    (void)x, (void)n, (void)q, (void)out;
    abort();
}
I8Pack *emo_pack_i8_conv(int M, int C, int k, int s, int wq, size_t plane, const real *W) {
    (void)M, (void)C, (void)k, (void)s, (void)wq, (void)plane, (void)W;
    return NULL;
}
void emo_quantize4(const real *x, size_t cstride, int nch, size_t n, EmoQuant q, uint8_t *out) {
    (void)x, (void)cstride, (void)nch, (void)n, (void)q, (void)out;
    abort();
}
void emo_conv_i8(const I8Pack *p, int N, const uint8_t *x4, EmoQuant e, real *C, int ldc) {
    (void)p, (void)N, (void)x4, (void)e, (void)C, (void)ldc;
    abort();
}
void emo_prefetch_i8(const I8Pack *p) { (void)p; }
I8Rows *emo_pack_i8_rows(int M, int K, const real *A, int lda) {
    (void)M, (void)K, (void)A, (void)lda;
    return NULL;
}
void emo_free_i8_rows(I8Rows *p) { (void)p; }
void emo_gemv_i8(const I8Rows *p, int N, const real *X, int ldx, real *Y, int ldy) {
    (void)p, (void)N, (void)X, (void)ldx, (void)Y, (void)ldy;
    abort();
}
#endif
