// winograd.c: stride-1 convolution by Winograd's minimal filtering on 6x6 input tiles,
// F(4x4, 3x3) and F(2x2, 5x5) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016). Both interpolate at the points 0, 1, -1, 2, -2 and infinity, so they share
// the input transform B^T; the output transform A^T and the filter transform G follow from
// the points:
//     A^T[i][j] = p_j^i,  G[j][a] = p_j^a / f_j,  f_j = prod_{l != j} (p_j - p_l),
// with the point at infinity contributing only the last row of G and the last column of A^T.
//
// Each output tile of m x m pixels (m = 6 - k + 1) is computed from a 6x6 input tile as
//     Y = A^T [ sum_c (G g_{o,c} G^T) .* (B^T d_c B) ] A,
// so that the channel sum at each of the 36 tile elements is one GEMM over all tiles:
//     M_xi (out_c x tiles) = U_xi (out_c x in_c) . V_xi (in_c x tiles),   xi = 0..35.
// That is 36 multiplies per tile and channel pair where the direct convolution needs
// m*m*k*k: 144 for 3x3 (4x fewer) and 100 for 5x5 (2.8x fewer). The transforms are linear
// passes over the data, vectorised along rows of tiles.
//
// Training needs two more products. The input gradient of a stride-1 convolution is a
// convolution of dy with the kernels turned by 180 degrees and in/out swapped, padded by
// k - 1 - pad: wino_filter(flip) and wino_conv do it. The weight gradient is summed in the
// Winograd domain, dU_xi (out_c x in_c) += D_xi . V_xi^T with D = A dY A^T per tile (the
// output transform's transpose), and brought back once per batch: dW = G^T dU G.
#include <string.h>

#include "layer.h"

enum { A6 = 6, XI = 36 };

static const real PTS[5] = {0, 1, -1, 2, -2};

int wino_m(int k) { return A6 - k + 1; }

int wino_tiles(int oh, int ow, int k) {
    int m = wino_m(k);
    return ((oh + m - 1) / m) * ((ow + m - 1) / m);
}

// g[j][a] for j < 6, a < k (row-major 6 x k)
static void wino_g(int k, real *g) {
    for (int j = 0; j < A6; j++)
        for (int a = 0; a < k; a++) g[j * k + a] = 0;
    for (int j = 0; j < 5; j++) {
        real f = 1, p = 1;
        for (int l = 0; l < 5; l++)
            if (l != j) f *= PTS[j] - PTS[l];
        for (int a = 0; a < k; a++, p *= PTS[j]) g[j * k + a] = p / f;
    }
    g[5 * k + k - 1] = 1;
}

// One kernel (k x k at src, turned by 180 degrees when flip) to U = G g G^T (6 x 6), written
// at u[xi * su]. Inlined with k constant, so that its loops unroll.
static inline __attribute__((always_inline)) void wino_filter1(const real *g, const real *src,
                                                               int k, int flip, real *u,
                                                               size_t su) {
    real t[A6 * 5], kern[25];
    for (int a = 0; a < k * k; a++) kern[a] = flip ? src[k * k - 1 - a] : src[a];
    for (int i = 0; i < A6; i++)   // t = G . kern  (6 x k)
        for (int b = 0; b < k; b++) {
            real s = 0;
            for (int a = 0; a < k; a++) s += g[i * k + a] * kern[a * k + b];
            t[i * k + b] = s;
        }
    for (int i = 0; i < A6; i++)   // U = t . G^T (6 x 6)
        for (int j = 0; j < A6; j++) {
            real s = 0;
            for (int b = 0; b < k; b++) s += t[i * k + b] * g[j * k + b];
            u[(size_t)(i * A6 + j) * su] = s;
        }
}

void wino_filter(const real *w, int oc, int ic, int k, int flip, real *u) {
    real g[A6 * 5];
    wino_g(k, g);
    size_t su = (size_t)oc * ic;
#pragma omp parallel for schedule(static) if ((long)oc * ic >= 1024)
    for (int o = 0; o < oc; o++)
        for (int c = 0; c < ic; c++) {
            const real *src = w + ((size_t)o * ic + c) * k * k;
            // flipped, the roles of o and c swap
            real *at = u + (flip ? (size_t)c * oc + o : (size_t)o * ic + c);
            if (k == 3)
                wino_filter1(g, src, 3, flip, at, su);
            else
                wino_filter1(g, src, 5, flip, at, su);
        }
}

// Scratch of the transforms: a zero-padded plane that holds every input tile, and six rows of
// one tile row after the vertical pass (input), or m x 6 rows of tiles and m output rows
// (output).
static size_t wino_scratch(int m, int th, int tw) {
    size_t pw = (size_t)tw * m + A6 - m, ph = (size_t)th * m + A6 - m;
    return ph * pw + A6 * pw + (size_t)(m * A6 + m) * tw * m;
}

// The passes below are loops over a row of n independent positions with restrict pointers, so
// that the compiler vectorises them; m is a constant where they are inlined.

// The input transform along one direction, for n positions: o_j[p] = sum_a B^T[j][a] d_a,
// where input a of position p is d[p*step + a*sd] and output j goes to o[j*so + p]. Vertical
// (along rows: step 1, sd the row stride) and horizontal (one tile per position: step m,
// sd 1) passes are the same loop.
static inline __attribute__((always_inline)) void bt_pass(real *restrict o, size_t so,
                                                          const real *restrict d, size_t sd,
                                                          int step, int n) {
#pragma omp simd simdlen(8)
    for (int p = 0; p < n; p++) {
        const real *q = d + (size_t)p * step;
        real d0 = q[0], d1 = q[sd], d2 = q[2 * sd], d3 = q[3 * sd], d4 = q[4 * sd];
        real d5 = q[5 * sd];
        o[p] = 4 * d0 - 5 * d2 + d4;
        o[so + p] = -4 * d1 - 4 * d2 + d3 + d4;
        o[2 * so + p] = 4 * d1 - 4 * d2 - d3 + d4;
        o[3 * so + p] = -2 * d1 - d2 + 2 * d3 + d4;
        o[4 * so + p] = 2 * d1 - d2 - 2 * d3 + d4;
        o[5 * so + p] = 4 * d1 - 5 * d3 + d5;
    }
}

// Vertical output pass: o_i[t] = sum_a A^T[i][a] d_a[t] for i < m, the rows d_a at stride sd.
static inline __attribute__((always_inline)) void at_rows(real *restrict o, size_t so,
                                                          const real *restrict d, size_t sd,
                                                          int n, int m) {
#pragma omp simd simdlen(8)
    for (int t = 0; t < n; t++) {
        real d0 = d[t], d1 = d[sd + t], d2 = d[2 * sd + t], d3 = d[3 * sd + t];
        real d4 = d[4 * sd + t], d5 = d[5 * sd + t];
        real p12 = d1 + d2, m12 = d1 - d2, p34 = d3 + d4, m34 = d3 - d4;
        o[t] = d0 + p12 + p34;
        if (m == 2) {
            o[so + t] = m12 + 2 * m34 + d5;
        } else {
            o[so + t] = m12 + 2 * m34;
            o[2 * so + t] = p12 + 4 * p34;
            o[3 * so + t] = m12 + 8 * m34 + d5;
        }
    }
}

// Horizontal output pass: row y[tx*m + j] = bias + sum_e A^T[j][e] d_e[tx], the rows d_e at
// stride sd; clamped at 0 when relu.
static inline __attribute__((always_inline)) void at_cols(real *restrict y, const real *restrict d,
                                                          size_t sd, int tw, int m, real b,
                                                          int relu) {
#pragma omp simd simdlen(8)
    for (int tx = 0; tx < tw; tx++) {
        real d0 = d[tx], d1 = d[sd + tx], d2 = d[2 * sd + tx], d3 = d[3 * sd + tx];
        real d4 = d[4 * sd + tx], d5 = d[5 * sd + tx];
        real p12 = d1 + d2, m12 = d1 - d2, p34 = d3 + d4, m34 = d3 - d4;
        real o[4];
        o[0] = b + d0 + p12 + p34;
        if (m == 2) {
            o[1] = b + m12 + 2 * m34 + d5;
        } else {
            o[1] = b + m12 + 2 * m34;
            o[2] = b + p12 + 4 * p34;
            o[3] = b + m12 + 8 * m34 + d5;
        }
        for (int j = 0; j < m; j++) y[tx * m + j] = relu && o[j] < 0 ? 0 : o[j];
    }
}

// The input tiles of one image (ic planes of h x w at stride cs) into v (36, ic, ldv): tile
// (ty, tx), column ty*tw + tx, is the 6x6 window at (ty*m - pad, tx*m - pad), zero outside.
static inline __attribute__((always_inline)) void wino_input_m(const real *x, size_t cs, int ic,
                                                               int h, int w, int pad, int m,
                                                               int th, int tw, real *v,
                                                               size_t ldv, real *scratch) {
    int pw = tw * m + A6 - m, ph = th * m + A6 - m;
    real *pl = scratch, *rows = scratch + (size_t)ph * pw;
    memset(pl, 0, (size_t)ph * pw * sizeof(real));
    int cw = w < pw - pad ? w : pw - pad, chh = h < ph - pad ? h : ph - pad;   // what fits
    size_t so = (size_t)ic * ldv;   // from xi to xi + 1
    for (int c = 0; c < ic; c++) {
        const real *xc = x + c * cs;
        for (int r = 0; r < chh; r++)
            memcpy(pl + (size_t)(r + pad) * pw + pad, xc + (size_t)r * w,
                   (size_t)cw * sizeof(real));
        for (int ty = 0; ty < th; ty++) {
            bt_pass(rows, (size_t)pw, pl + (size_t)ty * m * pw, (size_t)pw, 1, pw);
            for (int i = 0; i < A6; i++)
                bt_pass(v + ((size_t)i * A6 * ic + c) * ldv + (size_t)ty * tw, so,
                        rows + (size_t)i * pw, 1, m, tw);
        }
    }
}

// The output tiles (36, oc, ldv) of one image back to y (oc planes of oh x ow at stride cs):
// Y = A^T M A, plus bias, clamped at 0 when relu.
static inline __attribute__((always_inline)) void wino_output_m(const real *mm, size_t ldv,
                                                                int oc, int m, int th, int tw,
                                                                const real *bias, int relu,
                                                                real *y, size_t cs, int oh,
                                                                int ow, real *scratch) {
    real *t = scratch, *out = scratch + (size_t)m * A6 * tw;   // t: (6 columns e, m, tw)
    size_t sx = (size_t)oc * ldv;   // from xi to xi + 1
    for (int c = 0; c < oc; c++) {
        real bo = bias ? bias[c] : 0, *yc = y + c * cs;
        for (int ty = 0; ty < th; ty++) {
            const real *src = mm + (size_t)c * ldv + (size_t)ty * tw;
            for (int e = 0; e < A6; e++)   // column e of every tile: rows a = 0..5 -> i < m
                at_rows(t + (size_t)e * m * tw, (size_t)tw, src + e * sx, A6 * sx, tw, m);
            for (int i = 0; i < m && ty * m + i < oh; i++) {
                at_cols(out, t + (size_t)i * tw, (size_t)m * tw, tw, m, bo, relu);
                memcpy(yc + (size_t)(ty * m + i) * ow, out, (size_t)ow * sizeof(real));
            }
        }
    }
}

static void wino_input(const real *x, size_t cs, int ic, int h, int w, int pad, int m, int th,
                       int tw, real *v, size_t ldv, real *scratch) {
    if (m == 2)
        wino_input_m(x, cs, ic, h, w, pad, 2, th, tw, v, ldv, scratch);
    else
        wino_input_m(x, cs, ic, h, w, pad, 4, th, tw, v, ldv, scratch);
}

static void wino_output(const real *mm, size_t ldv, int oc, int m, int th, int tw,
                        const real *bias, int relu, real *y, size_t cs, int oh, int ow,
                        real *scratch) {
    if (m == 2)
        wino_output_m(mm, ldv, oc, 2, th, tw, bias, relu, y, cs, oh, ow, scratch);
    else
        wino_output_m(mm, ldv, oc, 4, th, tw, bias, relu, y, cs, oh, ow, scratch);
}

// Vertical pass of the output gradient: o_a[x] = sum_i A^T[i][a] d_i[x], the m rows d_i at
// stride sd, for the six a.
static inline __attribute__((always_inline)) void a_rows(real *restrict o, size_t so,
                                                         const real *restrict d, size_t sd,
                                                         int n, int m) {
#pragma omp simd simdlen(8)
    for (int x = 0; x < n; x++) {
        real y0 = d[x], y1 = d[sd + x];
        if (m == 2) {
            o[x] = y0, o[so + x] = y0 + y1, o[2 * so + x] = y0 - y1;
            o[3 * so + x] = y0 + 2 * y1, o[4 * so + x] = y0 - 2 * y1, o[5 * so + x] = y1;
        } else {
            real y2 = d[2 * sd + x], y3 = d[3 * sd + x], p02 = y0 + y2, p13 = y1 + y3;
            real q02 = y0 + 4 * y2, q13 = 2 * y1 + 8 * y3;
            o[x] = y0, o[so + x] = p02 + p13, o[2 * so + x] = p02 - p13;
            o[3 * so + x] = q02 + q13, o[4 * so + x] = q02 - q13, o[5 * so + x] = y3;
        }
    }
}

// Horizontal pass: o_b[tx] = sum_j A^T[j][b] r[tx*m + j], for the six b.
static inline __attribute__((always_inline)) void a_cols(real *restrict o, size_t so,
                                                         const real *restrict r, int tw, int m) {
#pragma omp simd simdlen(8)
    for (int tx = 0; tx < tw; tx++) {
        const real *d = r + tx * m;
        real y0 = d[0], y1 = d[1];
        if (m == 2) {
            o[tx] = y0, o[so + tx] = y0 + y1, o[2 * so + tx] = y0 - y1;
            o[3 * so + tx] = y0 + 2 * y1, o[4 * so + tx] = y0 - 2 * y1, o[5 * so + tx] = y1;
        } else {
            real y2 = d[2], y3 = d[3], p02 = y0 + y2, p13 = y1 + y3;
            real q02 = y0 + 4 * y2, q13 = 2 * y1 + 8 * y3;
            o[tx] = y0, o[so + tx] = p02 + p13, o[2 * so + tx] = p02 - p13;
            o[3 * so + tx] = q02 + q13, o[4 * so + tx] = q02 - q13, o[5 * so + tx] = y3;
        }
    }
}

// The output gradient's tiles (oc planes of oh x ow at stride cs, m x m per tile, zero past
// the edges) into the Winograd domain, D = A dY A^T, as d (36, oc, ldv): the transpose of the
// output transform, which is what the weight gradient needs.
static inline __attribute__((always_inline)) void wino_dy_m(const real *dy, size_t cs, int oc,
                                                            int oh, int ow, int m, int th, int tw,
                                                            real *d, size_t ldv, real *scratch) {
    int pw = tw * m, ph = th * m;
    real *pl = scratch, *rows = scratch + (size_t)ph * pw;
    memset(pl, 0, (size_t)ph * pw * sizeof(real));
    size_t so = (size_t)oc * ldv;
    for (int c = 0; c < oc; c++) {
        const real *yc = dy + c * cs;
        for (int r = 0; r < oh; r++)
            memcpy(pl + (size_t)r * pw, yc + (size_t)r * ow, (size_t)ow * sizeof(real));
        for (int ty = 0; ty < th; ty++) {
            a_rows(rows, (size_t)pw, pl + (size_t)ty * m * pw, (size_t)pw, pw, m);
            for (int a = 0; a < A6; a++)
                a_cols(d + ((size_t)a * A6 * oc + c) * ldv + (size_t)ty * tw, so,
                       rows + (size_t)a * pw, tw, m);
        }
    }
}

size_t wino_ws(int ic, int oc, int oh, int ow, int k, int n) {
    int m = wino_m(k), th = (oh + m - 1) / m, tw = (ow + m - 1) / m;
    return (size_t)XI * (size_t)(ic + oc) * (size_t)(th * tw) * (size_t)n + wino_scratch(m, th, tw);
}

void wino_conv(const real *u, const real *x, size_t xis, size_t xcs, int n, int ic, int h, int w,
               int pad, int k, int oc, const real *bias, int relu, real *y, size_t yis,
               size_t ycs, real *ws) {
    int m = wino_m(k), oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
    int th = (oh + m - 1) / m, tw = (ow + m - 1) / m, nt = th * tw;
    size_t ld = (size_t)n * nt;   // the n images' tiles side by side
    real *v = ws, *mm = ws + (size_t)XI * ic * ld, *scratch = mm + (size_t)XI * oc * ld;
    for (int i = 0; i < n; i++)
        wino_input(x + i * xis, xcs, ic, h, w, pad, m, th, tw, v + (size_t)i * nt, ld, scratch);
    for (int xi = 0; xi < XI; xi++)
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, (int)ld, ic, 1,
             u + (size_t)xi * oc * ic, ic, v + (size_t)xi * ic * ld, (int)ld, 0,
             mm + (size_t)xi * oc * ld, (int)ld);
    for (int i = 0; i < n; i++)
        wino_output(mm + (size_t)i * nt, ld, oc, m, th, tw, bias, relu, y + i * yis, ycs, oh, ow,
                    scratch);
}

void wino_dw(const real *x, size_t xis, size_t xcs, int n, int ic, int h, int w, int pad, int k,
             const real *dy, size_t yis, size_t ycs, int oc, real *du, real *ws) {
    int m = wino_m(k), oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
    int th = (oh + m - 1) / m, tw = (ow + m - 1) / m, nt = th * tw;
    size_t ld = (size_t)n * nt;
    real *v = ws, *d = ws + (size_t)XI * ic * ld, *scratch = d + (size_t)XI * oc * ld;
    for (int i = 0; i < n; i++) {
        wino_input(x + i * xis, xcs, ic, h, w, pad, m, th, tw, v + (size_t)i * nt, ld, scratch);
        if (m == 2)
            wino_dy_m(dy + i * yis, ycs, oc, oh, ow, 2, th, tw, d + (size_t)i * nt, ld, scratch);
        else
            wino_dy_m(dy + i * yis, ycs, oc, oh, ow, 4, th, tw, d + (size_t)i * nt, ld, scratch);
    }
    for (int xi = 0; xi < XI; xi++)   // dU_xi (oc x ic) += D_xi . V_xi^T
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, oc, ic, (int)ld, 1, d + (size_t)xi * oc * ld,
             (int)ld, v + (size_t)xi * ic * ld, (int)ld, 1, du + (size_t)xi * oc * ic, ic);
}

void wino_dw_finish(const real *du, int oc, int ic, int k, real *dw) {
    real g[A6 * 5];
    wino_g(k, g);
#pragma omp parallel for schedule(static) if ((long)oc * ic >= 1024)
    for (int o = 0; o < oc; o++)
        for (int c = 0; c < ic; c++) {
            real t[A6 * 5];
            const real *s = du + (size_t)o * ic + c;   // element xi at s[xi * oc * ic]
            size_t sx = (size_t)oc * ic;
            for (int i = 0; i < A6; i++)   // t = dU . G  (6 x k)
                for (int b = 0; b < k; b++) {
                    real acc = 0;
                    for (int j = 0; j < A6; j++) acc += s[(i * A6 + j) * sx] * g[j * k + b];
                    t[i * k + b] = acc;
                }
            real *dst = dw + ((size_t)o * ic + c) * k * k;
            for (int a = 0; a < k; a++)   // dW += G^T . t  (k x k)
                for (int b = 0; b < k; b++) {
                    real acc = 0;
                    for (int i = 0; i < A6; i++) acc += g[i * k + a] * t[i * k + b];
                    dst[a * k + b] += acc;
                }
        }
}
