// batchnorm.c: batch normalisation over channels, for images (N,C,H,W) and vectors (N,C,1,1)
// alike, i.e. PyTorch's BatchNorm2d and BatchNorm1d. A ReLU after it is applied here (seq.c),
// and in training a 2x2 max-pool after that too: the normalised planes are never stored.
//
//   bn [eps=1e-5] [momentum=0.1]
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct {
    Layer base;
    real eps, momentum;
    real *gamma, *dgamma, *beta, *dbeta;   // (C)
    real *rmean, *rvar;                    // (C) running statistics (buffers)
    real *mean, *invstd;                   // (C) statistics of the last forward; owned
    uint8_t *code;   // (nmax, C, H/2, W/2) with a fused max-pool: the winners (maxpool2_pick)
} BatchNorm;

// Statistics are summed in float inside each plane (vectorised: an OpenMP simd reduction
// may reorder) and in double across planes.
// Vectors (N, C): loop over samples outside, channels inside, so that the inner loops run
// along contiguous memory.
static void bn1d_forward(BatchNorm *bn, const real *x, real *y, int n, int train) {
    int C = bn->base.in.c;
    real *mu = bn->mean, *is = bn->invstd;
    if (train) {
        for (int ch = 0; ch < C; ch++) mu[ch] = is[ch] = 0;
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < C; ch++) mu[ch] += x[(size_t)i * C + ch];
        for (int ch = 0; ch < C; ch++) mu[ch] /= (real)n;
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < C; ch++) {
                real d = x[(size_t)i * C + ch] - mu[ch];
                is[ch] += d * d;   // the sum of squares, for now
            }
        for (int ch = 0; ch < C; ch++) {
            double ss = is[ch], var = ss / n, unbiased = n > 1 ? ss / (n - 1) : var;
            bn->rmean[ch] = (real)((1 - bn->momentum) * bn->rmean[ch] + bn->momentum * mu[ch]);
            bn->rvar[ch] = (real)((1 - bn->momentum) * bn->rvar[ch] + bn->momentum * unbiased);
            is[ch] = (real)(1.0 / sqrt(var + bn->eps));
        }
    } else {
        for (int ch = 0; ch < C; ch++) {
            mu[ch] = bn->rmean[ch];
            is[ch] = (real)(1.0 / sqrt((double)bn->rvar[ch] + bn->eps));
        }
    }
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < C; ch++) {
            real v = (x[(size_t)i * C + ch] - mu[ch]) * is[ch] * bn->gamma[ch] + bn->beta[ch];
            y[(size_t)i * C + ch] = bn->base.relu && v < 0 ? 0 : v;
        }
}

static void bn1d_backward(BatchNorm *bn, const real *x, const real *y, const real *dy, real *dx,
                          int n, int train, real *ws) {
    int C = bn->base.in.c, relu = bn->base.relu;
    real *sdy = ws, *sdyx = ws + C;   // (C) each
    for (int ch = 0; ch < C; ch++) sdy[ch] = sdyx[ch] = 0;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < C; ch++) {
            size_t o = (size_t)i * C + ch;
            real g = relu && y[o] <= 0 ? 0 : dy[o];
            sdy[ch] += g;
            sdyx[ch] += g * (x[o] - bn->mean[ch]) * bn->invstd[ch];
        }
    for (int ch = 0; ch < C; ch++) {
        bn->dgamma[ch] += sdyx[ch];
        bn->dbeta[ch] += sdy[ch];
    }
    if (!dx) return;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < C; ch++) {
            size_t o = (size_t)i * C + ch;
            real g = relu && y[o] <= 0 ? 0 : dy[o], k = bn->gamma[ch] * bn->invstd[ch];
            real xh = (x[o] - bn->mean[ch]) * bn->invstd[ch];
            dx[o] = train ? k * (g - sdy[ch] / n - xh * sdyx[ch] / n) : k * g;
        }
}

// Channel ch's statistics: of the batch in training (updating the running ones), else the
// running ones.
static void bn_stats(BatchNorm *bn, const real *x, int n, int ch, int train, real *mean,
                     real *invstd) {
    int C = bn->base.in.c;
    size_t hw = (size_t)bn->base.in.h * bn->base.in.w, m = (size_t)n * hw;
    if (!train) {
        *mean = bn->rmean[ch];
        *invstd = (real)(1.0 / sqrt((double)bn->rvar[ch] + bn->eps));
        return;
    }
    // one pass: per-plane sums around a shift (the first value), which keeps E[x^2] - E[x]^2
    // from cancelling when the mean is large against the spread
    real shift = x[(size_t)ch * hw];
    double s1 = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        const real *p = x + ((size_t)i * C + ch) * hw;
        real a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
        for (size_t j = 0; j < hw; j++) {
            real d = p[j] - shift;
            a += d;
            b += d * d;
        }
        s1 += a;
        s2 += b;
    }
    double md = s1 / (double)m, mu = shift + md;
    double ss = s2 - s1 * md;   // sum of squared deviations from the mean
    if (ss < 0) ss = 0;
    double var = ss / (double)m, unbiased = m > 1 ? ss / (double)(m - 1) : var;
    *mean = (real)mu;
    *invstd = (real)(1.0 / sqrt(var + bn->eps));
    bn->rmean[ch] = (real)((1 - bn->momentum) * bn->rmean[ch] + bn->momentum * mu);
    bn->rvar[ch] = (real)((1 - bn->momentum) * bn->rvar[ch] + bn->momentum * unbiased);
}

// ---- the fused 2x2 max-pool, one plane (h x w, both even) at a time, in three kernels:
// bn_pool_plane (forward), bn_pool_sums and bn_pool_dx (backward). The generic loops run along
// one row of windows, which is short here (24 windows down to 3): with AVX-512 they are
// written out with masked loads and stores, so that a row's tail costs no scalar loop.
#if defined(__AVX512F__) && !defined(EMOCAM_F64)
#include <immintrin.h>
#define BN_POOL_AVX512 1

// A row of cnt <= 16 windows: its 2*cnt values, split into even (v0) and odd (v1) columns;
// lanes past cnt are zero.
static inline void row_split(const real *r, int cnt, __m512 *v0, __m512 *v1) {
    uint32_t m = cnt == 16 ? 0xffffffffu : (1u << (2 * cnt)) - 1;
    __m512 lo = _mm512_maskz_loadu_ps((__mmask16)m, r);
    __m512 hi = _mm512_maskz_loadu_ps((__mmask16)(m >> 16), r + 16);
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    *v0 = _mm512_permutex2var_ps(lo, ev, hi);
    *v1 = _mm512_permutex2var_ps(lo, od, hi);
}

// The inverse: even and odd columns interleaved into a row of 2*cnt values.
static inline void row_join(real *r, int cnt, __m512 v0, __m512 v1) {
    uint32_t m = cnt == 16 ? 0xffffffffu : (1u << (2 * cnt)) - 1;
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi =
        _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    _mm512_mask_storeu_ps(r, (__mmask16)m, _mm512_permutex2var_ps(v0, lo, v1));
    _mm512_mask_storeu_ps(r + 16, (__mmask16)(m >> 16), _mm512_permutex2var_ps(v0, hi, v1));
}

// x*sc + sh (a product, then a sum: the generic loops' rounding), clamped at 0 by a ReLU.
static inline __m512 bn_relu16(__m512 v, __m512 sc, __m512 sh, int relu) {
    v = _mm512_add_ps(_mm512_mul_ps(v, sc), sh);
    return relu ? _mm512_max_ps(v, _mm512_setzero_ps()) : v;   // max(NaN, 0) is 0, as v > 0
}

// The winners' values among x00 x01 / x10 x11 by their codes.
static inline __m512 pick16(__m512i cd, __m512 x00, __m512 x01, __m512 x10, __m512 x11) {
    __mmask16 odd = _mm512_test_epi32_mask(cd, _mm512_set1_epi32(1));
    __mmask16 below = _mm512_test_epi32_mask(cd, _mm512_set1_epi32(2));
    __m512 xa = _mm512_mask_blend_ps(odd, x00, x01), xb = _mm512_mask_blend_ps(odd, x10, x11);
    return _mm512_mask_blend_ps(below, xa, xb);
}
#endif

// One plane normalised as x*sc + sh, clamped at 0 by a fused ReLU, then max-pooled into q
// (h/2 x w/2) with the winners' codes (as maxpool2_pick: the same values, the same winners).
static inline __attribute__((always_inline)) void bn_pool_plane(const real *p, int h, int w,
                                                                real sc, real sh, int relu,
                                                                real *q, uint8_t *code) {
    int ow = w / 2;
    for (int oy = 0; oy < h / 2; oy++) {
        const real *restrict r0 = p + (size_t)2 * oy * w, *restrict r1 = r0 + w;
        real *restrict qr = q + (size_t)oy * ow;
        uint8_t *restrict cr = code + (size_t)oy * ow;
#ifdef BN_POOL_AVX512
        __m512 vsc = _mm512_set1_ps(sc), vsh = _mm512_set1_ps(sh);
        for (int ox = 0; ox < ow; ox += 16) {
            int cnt = ow - ox < 16 ? ow - ox : 16;
            __mmask16 m = (__mmask16)((1u << cnt) - 1);
            __m512 a0, a1, b0, b1;
            row_split(r0 + 2 * ox, cnt, &a0, &a1);
            row_split(r1 + 2 * ox, cnt, &b0, &b1);
            a0 = bn_relu16(a0, vsc, vsh, relu), a1 = bn_relu16(a1, vsc, vsh, relu);
            b0 = bn_relu16(b0, vsc, vsh, relu), b1 = bn_relu16(b1, vsc, vsh, relu);
            __mmask16 ca = _mm512_cmp_ps_mask(a1, a0, _CMP_GT_OQ);
            __mmask16 cb = _mm512_cmp_ps_mask(b1, b0, _CMP_GT_OQ);
            __m512 a = _mm512_mask_blend_ps(ca, a0, a1), b = _mm512_mask_blend_ps(cb, b0, b1);
            __mmask16 cr2 = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ);
            _mm512_mask_storeu_ps(qr + ox, m, _mm512_mask_blend_ps(cr2, a, b));
            __m512i one = _mm512_set1_epi32(1);
            __m512i va = _mm512_maskz_mov_epi32(ca, one);
            __m512i vb = _mm512_add_epi32(_mm512_maskz_mov_epi32(cb, one), _mm512_set1_epi32(2));
            _mm512_mask_cvtepi32_storeu_epi8(cr + ox, m, _mm512_mask_blend_epi32(cr2, va, vb));
        }
#else
#pragma omp simd
        for (int ox = 0; ox < ow; ox++) {
            real a0 = r0[2 * ox] * sc + sh, a1 = r0[2 * ox + 1] * sc + sh;
            real b0 = r1[2 * ox] * sc + sh, b1 = r1[2 * ox + 1] * sc + sh;
            if (relu) {
                a0 = a0 > 0 ? a0 : 0, a1 = a1 > 0 ? a1 : 0;
                b0 = b0 > 0 ? b0 : 0, b1 = b1 > 0 ? b1 : 0;
            }
            qr[ox] = maxpool2_pick(a0, a1, b0, b1, &cr[ox]);
        }
#endif
    }
}

// The backward's sums over one plane: the output gradient g (h/2 x w/2) reaches each
// window's winner only, and only where the ReLU let it through (x*sc + sh > 0). Adds the sum
// of those gradients to *sg and of gradient times (x - mean) to *sgx.
static inline __attribute__((always_inline)) void bn_pool_sums(const real *p, const real *g,
                                                               const uint8_t *code, int h, int w,
                                                               real sc, real sh, real mean,
                                                               int relu, real *sg, real *sgx) {
    int ow = w / 2;
#ifdef BN_POOL_AVX512
    __m512 vsc = _mm512_set1_ps(sc), vsh = _mm512_set1_ps(sh), vmean = _mm512_set1_ps(mean);
    __m512 acc_g = _mm512_setzero_ps(), acc_gx = _mm512_setzero_ps();
    for (int oy = 0; oy < h / 2; oy++) {
        const real *r0 = p + (size_t)2 * oy * w, *r1 = r0 + w, *gr = g + (size_t)oy * ow;
        const uint8_t *cr = code + (size_t)oy * ow;
        for (int ox = 0; ox < ow; ox += 16) {
            int cnt = ow - ox < 16 ? ow - ox : 16;
            __mmask16 m = (__mmask16)((1u << cnt) - 1);
            __m512 x00, x01, x10, x11;
            row_split(r0 + 2 * ox, cnt, &x00, &x01);
            row_split(r1 + 2 * ox, cnt, &x10, &x11);
            __m512i cd = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, cr + ox));
            __m512 xw = pick16(cd, x00, x01, x10, x11);
            __mmask16 pass = relu ? _mm512_cmp_ps_mask(bn_relu16(xw, vsc, vsh, 0),
                                                       _mm512_setzero_ps(), _CMP_GT_OQ)
                                  : m;
            __m512 gw = _mm512_maskz_loadu_ps(m & pass, gr + ox);
            acc_g = _mm512_add_ps(acc_g, gw);
            acc_gx = _mm512_fmadd_ps(gw, _mm512_sub_ps(xw, vmean), acc_gx);
        }
    }
    *sg += _mm512_reduce_add_ps(acc_g);
    *sgx += _mm512_reduce_add_ps(acc_gx);
#else
    real a = 0, b = 0;
    for (int oy = 0; oy < h / 2; oy++) {
        const real *r0 = p + (size_t)2 * oy * w, *r1 = r0 + w, *gr = g + (size_t)oy * ow;
        const uint8_t *cr = code + (size_t)oy * ow;
#pragma omp simd reduction(+ : a, b)
        for (int ox = 0; ox < ow; ox++) {
            int cd = cr[ox];   // every value loaded, then selected: that vectorises
            real x00 = r0[2 * ox], x01 = r0[2 * ox + 1], x10 = r1[2 * ox], x11 = r1[2 * ox + 1];
            real xa = cd & 1 ? x01 : x00, xb = cd & 1 ? x11 : x10, xw = cd & 2 ? xb : xa;
            real gw = !relu || xw * sc + sh > 0 ? gr[ox] : 0;
            a += gw;
            b += gw * (xw - mean);
        }
    }
    *sg += a;
    *sgx += b;
#endif
}

// The input gradient of one plane, d = k (g - A - (x - mean) B), with g the output gradient
// at the windows' winners that the ReLU let through, 0 elsewhere.
static inline __attribute__((always_inline)) void bn_pool_dx(const real *p, const real *g,
                                                             const uint8_t *code, int h, int w,
                                                             real sc, real sh, real mean,
                                                             int relu, real k, real A, real B,
                                                             real *d) {
    int ow = w / 2;
    for (int oy = 0; oy < h / 2; oy++) {
        const real *restrict r0 = p + (size_t)2 * oy * w, *restrict r1 = r0 + w;
        const real *restrict gr = g + (size_t)oy * ow;
        const uint8_t *restrict cr = code + (size_t)oy * ow;
        real *restrict d0 = d + (size_t)2 * oy * w, *restrict d1 = d0 + w;
#ifdef BN_POOL_AVX512
        __m512 vsc = _mm512_set1_ps(sc), vsh = _mm512_set1_ps(sh), vmean = _mm512_set1_ps(mean);
        __m512 vk = _mm512_set1_ps(k), vA = _mm512_set1_ps(A), vB = _mm512_set1_ps(B);
        for (int ox = 0; ox < ow; ox += 16) {
            int cnt = ow - ox < 16 ? ow - ox : 16;
            __mmask16 m = (__mmask16)((1u << cnt) - 1);
            __m512 x[4];
            row_split(r0 + 2 * ox, cnt, &x[0], &x[1]);
            row_split(r1 + 2 * ox, cnt, &x[2], &x[3]);
            __m512i cd = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, cr + ox));
            __m512 xw = pick16(cd, x[0], x[1], x[2], x[3]);
            __mmask16 pass = relu ? _mm512_cmp_ps_mask(bn_relu16(xw, vsc, vsh, 0),
                                                       _mm512_setzero_ps(), _CMP_GT_OQ)
                                  : m;
            __m512 gw = _mm512_maskz_loadu_ps(m & pass, gr + ox), out[4];
            for (int t = 0; t < 4; t++) {
                __mmask16 win = _mm512_cmpeq_epi32_mask(cd, _mm512_set1_epi32(t));
                __m512 gt = _mm512_sub_ps(_mm512_maskz_mov_ps(win, gw), vA);
                gt = _mm512_sub_ps(gt, _mm512_mul_ps(_mm512_sub_ps(x[t], vmean), vB));
                out[t] = _mm512_mul_ps(vk, gt);
            }
            row_join(d0 + 2 * ox, cnt, out[0], out[1]);
            row_join(d1 + 2 * ox, cnt, out[2], out[3]);
        }
#else
#pragma omp simd
        for (int ox = 0; ox < ow; ox++) {
            int cd = cr[ox];
            real x00 = r0[2 * ox], x01 = r0[2 * ox + 1], x10 = r1[2 * ox], x11 = r1[2 * ox + 1];
            real xa = cd & 1 ? x01 : x00, xb = cd & 1 ? x11 : x10, xw = cd & 2 ? xb : xa;
            real gw = !relu || xw * sc + sh > 0 ? gr[ox] : 0;
            real g0 = cd == 0 ? gw : 0, g1 = cd == 1 ? gw : 0;
            real g2 = cd == 2 ? gw : 0, g3 = cd == 3 ? gw : 0;
            d0[2 * ox] = k * (g0 - A - (x00 - mean) * B);
            d0[2 * ox + 1] = k * (g1 - A - (x01 - mean) * B);
            d1[2 * ox] = k * (g2 - A - (x10 - mean) * B);
            d1[2 * ox + 1] = k * (g3 - A - (x11 - mean) * B);
        }
#endif
    }
}

static void bn_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    BatchNorm *bn = (BatchNorm *)l;
    int C = l->in.c, relu = l->relu, H = l->in.h, W = l->in.w;
    size_t hw = (size_t)H * W, m = (size_t)n * hw;
    int train = c->train, pool = l->pool && train;
    if (hw == 1) {
        bn1d_forward(bn, x, y, n, train);
        return;
    }
    size_t ohw = pool ? hw / 4 : hw;   // the output plane
#pragma omp parallel for schedule(static) if (m * C > PAR_MIN)
    for (int ch = 0; ch < C; ch++) {
        real mean, invstd;
        bn_stats(bn, x, n, ch, train, &mean, &invstd);
        bn->mean[ch] = mean;
        bn->invstd[ch] = invstd;
        real sc = invstd * bn->gamma[ch], sh = bn->beta[ch] - mean * sc;
        for (int i = 0; i < n; i++) {
            const real *p = x + ((size_t)i * C + ch) * hw;
            real *q = y + ((size_t)i * C + ch) * ohw;
            if (pool) {
                uint8_t *code = bn->code + ((size_t)i * C + ch) * ohw;
                if (relu)
                    bn_pool_plane(p, H, W, sc, sh, 1, q, code);
                else
                    bn_pool_plane(p, H, W, sc, sh, 0, q, code);
            } else if (relu) {
                for (size_t j = 0; j < hw; j++) {
                    real v = p[j] * sc + sh;
                    q[j] = v > 0 ? v : 0;
                }
            } else {
                for (size_t j = 0; j < hw; j++) q[j] = p[j] * sc + sh;
            }
        }
    }
}

// The backward through a fused max-pool (and ReLU) for one channel: sums dgamma and dbeta
// and, when dx is not NULL, writes dx (dy holds n planes of h/2 x w/2 at stride C*hw/4).
static inline __attribute__((always_inline)) void bn_pool_backward(
    BatchNorm *bn, const real *x, const real *dy, real *dx, int n, int ch, int relu) {
    int C = bn->base.in.c, h = bn->base.in.h, w = bn->base.in.w;
    size_t hw = (size_t)h * w, ohw = hw / 4, m = (size_t)n * hw;
    real mean = bn->mean[ch], invstd = bn->invstd[ch];
    real sc = invstd * bn->gamma[ch], sh = bn->beta[ch] - mean * sc;
    double sdy = 0, sdyx = 0;
    for (int i = 0; i < n; i++) {
        size_t pl = (size_t)i * C + ch;
        real a = 0, b = 0;
        bn_pool_sums(x + pl * hw, dy + pl * ohw, bn->code + pl * ohw, h, w, sc, sh, mean, relu,
                     &a, &b);
        sdy += a;
        sdyx += b;
    }
    sdyx *= invstd;
    bn->dgamma[ch] += (real)sdyx;
    bn->dbeta[ch] += (real)sdy;
    if (!dx) return;
    // dx = k (g - mean(g) - xhat mean(g xhat))
    real k = bn->gamma[ch] * invstd, A = (real)(sdy / (double)m);
    real B = (real)(sdyx / (double)m) * invstd;
    for (int i = 0; i < n; i++) {
        size_t pl = (size_t)i * C + ch;
        bn_pool_dx(x + pl * hw, dy + pl * ohw, bn->code + pl * ohw, h, w, sc, sh, mean, relu, k, A,
                   B, dx + pl * hw);
    }
}

static void bn_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx, int n,
                        Ctx *c) {
    BatchNorm *bn = (BatchNorm *)l;
    int C = l->in.c, relu = l->relu;
    size_t hw = (size_t)l->in.h * l->in.w, m = (size_t)n * hw;
    int train = c->train, pool = l->pool && train;
    if (hw == 1) {
        bn1d_backward(bn, x, y, dy, dx, n, train, c->ws);
        return;
    }
#pragma omp parallel for schedule(static) if (m * C > PAR_MIN)
    for (int ch = 0; ch < C; ch++) {
        if (pool) {
            if (relu)
                bn_pool_backward(bn, x, dy, dx, n, ch, 1);
            else
                bn_pool_backward(bn, x, dy, dx, n, ch, 0);
            continue;
        }
        real mean = bn->mean[ch], invstd = bn->invstd[ch];
        // a fused ReLU passes gradient only where the output x*sc + sh is positive; that is
        // recomputed from x, the same expression as forward, to save reading y
        real sc = invstd * bn->gamma[ch], sh = bn->beta[ch] - mean * sc;
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++) {
            size_t o = ((size_t)i * C + ch) * hw;
            const real *p = x + o, *g = dy + o;
            real a = 0, b = 0;
            if (relu) {
#pragma omp simd reduction(+ : a, b)
                for (size_t j = 0; j < hw; j++) {
                    real gj = p[j] * sc + sh > 0 ? g[j] : 0;
                    a += gj;
                    b += gj * (p[j] - mean);
                }
            } else {
#pragma omp simd reduction(+ : a, b)
                for (size_t j = 0; j < hw; j++) {
                    a += g[j];
                    b += g[j] * (p[j] - mean);
                }
            }
            sdy += a;
            sdyx += b;
        }
        sdyx *= invstd;
        bn->dgamma[ch] += (real)sdyx;
        bn->dbeta[ch] += (real)sdy;
        if (!dx) continue;
        real k = bn->gamma[ch] * invstd;
        // training: dx = k (dy - mean(dy) - xhat mean(dy xhat)); eval: dx = k dy
        real a = train ? (real)(sdy / (double)m) : 0;
        real b = train ? (real)(sdyx / (double)m) * invstd : 0;
        for (int i = 0; i < n; i++) {
            size_t o = ((size_t)i * C + ch) * hw;
            const real *p = x + o, *g = dy + o;
            real *d = dx + o;
            if (relu)
                for (size_t j = 0; j < hw; j++)
                    d[j] = k * ((p[j] * sc + sh > 0 ? g[j] : 0) - a - (p[j] - mean) * b);
            else
                for (size_t j = 0; j < hw; j++) d[j] = k * (g[j] - a - (p[j] - mean) * b);
        }
    }
}

static long bn_reserve(Layer *l, int n, int with_grads) {
    (void)with_grads;
    BatchNorm *bn = (BatchNorm *)l;
    free(bn->code);
    bn->code = NULL;
    if (l->pool && !(bn->code = malloc((size_t)n * shape_size(l->in) / 4))) return -1;
    return l->in.h * l->in.w == 1 ? 2L * l->in.c : 0;
}

static void bn_init(Layer *l, Rng *rng) {
    (void)rng;
    BatchNorm *bn = (BatchNorm *)l;
    for (int ch = 0; ch < l->in.c; ch++) {
        bn->gamma[ch] = 1;
        bn->beta[ch] = 0;
        bn->rmean[ch] = 0;
        bn->rvar[ch] = 1;
    }
}

static void bn_destroy(Layer *l) {
    BatchNorm *bn = (BatchNorm *)l;
    free(bn->mean);
    free(bn->invstd);
    free(bn->code);
}

static double bn_flops(const Layer *l) { return 2.0 * shape_size(l->in); }

static const LayerOps BN_OPS = {
    .kind = "bn",
    .forward = bn_forward,
    .backward = bn_backward,
    .reserve = bn_reserve,
    .init = bn_init,
    .destroy = bn_destroy,
    .flops = bn_flops,
    .fuse_relu = 1,
    .fuse_pool = 1,
};

Layer *bn_parse(Builder *b, Args *a, Shape in, const char *name) {
    real eps, momentum;
    if (args_real(b, a, "eps", 1e-5, 1e-12, 1, &eps) ||
        args_real(b, a, "momentum", 0.1, 0, 1, &momentum))
        return NULL;
    BatchNorm *bn = layer_alloc(b, sizeof *bn, &BN_OPS, in, name);
    if (!bn) return NULL;
    bn->eps = eps;
    bn->momentum = momentum;
    bn->mean = real_alloc((size_t)in.c);
    bn->invstd = real_alloc((size_t)in.c);
    int C = in.c;
    if (!bn->mean || !bn->invstd ||
        builder_tensor(b, &bn->base, "gamma", 1, &C, &bn->gamma, &bn->dgamma, 0, 0) ||
        builder_tensor(b, &bn->base, "beta", 1, &C, &bn->beta, &bn->dbeta, 0, 0) ||
        builder_tensor(b, &bn->base, "running_mean", 1, &C, &bn->rmean, NULL, 1, 0) ||
        builder_tensor(b, &bn->base, "running_var", 1, &C, &bn->rvar, NULL, 1, 0)) {
        layer_free(&bn->base);
        return b->err[0] ? NULL : builder_fail(b, "out of memory");
    }
    return &bn->base;
}

int bn_affine(Layer *l, real *scale, real *shift) {
    if (l->ops != &BN_OPS) return -1;
    BatchNorm *bn = (BatchNorm *)l;
    for (int ch = 0; ch < l->in.c; ch++) {
        scale[ch] = (real)(bn->gamma[ch] / sqrt((double)bn->rvar[ch] + bn->eps));
        shift[ch] = bn->beta[ch] - bn->rmean[ch] * scale[ch];
    }
    return 0;
}

int bn_momentum(Layer *l, real *get, real m) {
    if (l->ops != &BN_OPS) return -1;
    BatchNorm *bn = (BatchNorm *)l;
    if (get) *get = bn->momentum;
    if (m >= 0) bn->momentum = m;
    return 0;
}
