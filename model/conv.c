// conv.c: 2-D convolution by one of three GEMM formulations.
//
//   conv out=64 k=3 [stride=1] [pad=0] [groups=1] [bias=1]
//
// - im2col (any convolution): chunks of the batch are lowered into col (K x m*oh*ow, K =
//   in_c*k*k), so that each group is one sgemm: Y' (out_c x m*oh*ow) = W (out_c x K) . col,
//   scattered to NCHW.
// - Winograd (winograd.c) for stride-1 3x3 and 5x5 on big planes: forward, input gradient and
//   weight gradient, with 2.25-4x fewer multiplies.
// - shifted GEMMs for the forward of other stride-1 convolutions on big planes.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct {
    Layer base;
    int k, stride, pad, groups;
    real *w, *dw;   // (out_c, in_c/groups, k, k)
    real *b, *db;   // (out_c), NULL without bias
    real *fold_b;   // (out_c) bias made by folding a batchnorm; owned
    real *taps;     // (k*k, out_c, in_c) weights by tap, kept once folded (frozen); owned
    real *wino;     // (36, out_c, in_c) Winograd-domain weights, kept once frozen; owned
    uint16_t *wpack;   // frozen in bfloat16 mode: the forward's weight matrices (by tap on the
                       // shifted path, else by group) packed into AMX tiles; owned
    size_t wpack_len;  // uint16 elements per matrix
    I8Pack *i8;        // frozen in int8 mode (one group): W in 8 bits; owned
    int i8_direct;     // i8 is packed for i8_forward (emo_pack_i8_conv), else for im2col
    int nmax, threads;   // batch capacity and thread count the workspace was sized for
} Conv;

void im2col_batch(const real *x, int n, int c, int h, int w, int k, int stride, int pad,
                  int oh, int ow, real *col) {
    size_t hwo = (size_t)oh * ow, nhw = (size_t)n * hwo;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)n * c * k * k * hwo > PAR_MIN)
    for (int i = 0; i < n; i++)
        for (int ci = 0; ci < c; ci++) {
            const real *xp = x + ((size_t)i * c + ci) * h * w;
            for (int kh = 0; kh < k; kh++)
                for (int kw = 0; kw < k; kw++) {
                    real *dst = col + ((size_t)(ci * k + kh) * k + kw) * nhw + i * hwo;
                    // columns ox whose input ix = ox*stride - pad + kw lies inside [0, w)
                    int lo = 0, hi = ow;
                    while (lo < ow && lo * stride - pad + kw < 0) lo++;
                    while (hi > lo && (hi - 1) * stride - pad + kw >= w) hi--;
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy * stride - pad + kh;
                        real *d = dst + (size_t)oy * ow;
                        if (iy < 0 || iy >= h) {
                            memset(d, 0, (size_t)ow * sizeof(real));
                            continue;
                        }
                        const real *s = xp + (size_t)iy * w;
                        int off = kw - pad;   // ix = ox*stride + off
                        for (int ox = 0; ox < lo; ox++) d[ox] = 0;
                        if (stride == 1 && hi > lo)
                            memcpy(d + lo, s + lo + off, (size_t)(hi - lo) * sizeof(real));
                        else
                            for (int ox = lo; ox < hi; ox++) d[ox] = s[ox * stride + off];
                        for (int ox = hi; ox < ow; ox++) d[ox] = 0;
                    }
                }
        }
}

void col2im_batch(const real *col, int n, int c, int h, int w, int k, int stride, int pad,
                  int oh, int ow, real *dx) {
    size_t hwo = (size_t)oh * ow, nhw = (size_t)n * hwo;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)n * c * k * k * hwo > PAR_MIN)
    for (int i = 0; i < n; i++)
        for (int ci = 0; ci < c; ci++) {
            real *xp = dx + ((size_t)i * c + ci) * h * w;
            memset(xp, 0, (size_t)h * w * sizeof(real));
            for (int kh = 0; kh < k; kh++)
                for (int kw = 0; kw < k; kw++) {
                    const real *src = col + ((size_t)(ci * k + kh) * k + kw) * nhw + i * hwo;
                    int lo = 0, hi = ow;
                    while (lo < ow && lo * stride - pad + kw < 0) lo++;
                    while (hi > lo && (hi - 1) * stride - pad + kw >= w) hi--;
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy * stride - pad + kh;
                        if (iy < 0 || iy >= h) continue;
                        const real *restrict s = src + (size_t)oy * ow;
                        real *restrict d = xp + (size_t)iy * w + (kw - pad);
                        if (stride == 1)   // contiguous: vectorises
                            for (int ox = lo; ox < hi; ox++) d[ox] += s[ox];
                        else
                            for (int ox = lo; ox < hi; ox++) d[ox * stride] += s[ox];
                    }
                }
        }
}

// The batch is cut into chunks of images; each thread lowers one chunk at a time into its own
// col buffer (small enough to stay in cache) and runs single-threaded GEMMs on it (OpenBLAS's
// OpenMP build does not fork inside a parallel region). A chunk holds enough images that the
// GEMM's N = images * oh * ow is at least CHUNK_N.
enum { CHUNK_N = 256, AMX_CHUNK_N = 1024 };

// d[p] = s[p] + b for n pixels, clamped at 0 when a ReLU is fused.
static void bias_relu(real *restrict d, const real *s, size_t n, real b, int relu) {
    if (relu)
        for (size_t p = 0; p < n; p++) d[p] = s[p] + b > 0 ? s[p] + b : 0;
    else
        for (size_t p = 0; p < n; p++) d[p] = s[p] + b;
}

// Shifted GEMMs: a stride-1 convolution without im2col. The input plane is copied into a
// zero-padded plane of width Wp = w + 2*pad; output pixel (oy, ox) at index oy*Wp + ox reads
// tap (ky, kx) at index + ky*Wp + kx, so for each tap the whole padded input is one matrix
// (in_c x oh*Wp, leading dimension the padded plane size) and
//     Y (out_c x oh*Wp) += W_tap (out_c x in_c) . X_pad shifted by the tap.
// The Wp - ow columns at the end of each output row are junk and dropped. Where the lowered
// matrix would be k*k times the input, this reads the input k*k times from cache instead.
// Measured on one core here, per image: 32->32 3x3 on 48x48, 0.69 ms with im2col, 0.45 ms
// shifted; 64->64 on 24x24, 0.42 / 0.36; but 256->256 on 6x6, 0.60 / 0.68. So it is used
// on big planes with enough channels, and im2col stays for the rest.
static int conv_shifted(const Layer *l) {
    const Conv *cv = (const Conv *)l;
    return cv->stride == 1 && cv->groups == 1 && cv->k > 1 && l->in.c >= 16 &&
           l->out.h * l->out.w >= 400;
}

// Geometry of the shifted path: padded width wp, plane stride ps (the padded plane plus k
// reals of slack, so that a tap's shifted rows never reach the next channel's plane) and npix
// = oh * wp, the output pixels including the junk columns.
typedef struct {
    int wp;
    size_t ps, npix;
} ShiftGeom;

static ShiftGeom shift_geom(const Layer *l) {
    const Conv *cv = (const Conv *)l;
    ShiftGeom s = {.wp = l->in.w + 2 * cv->pad};
    s.ps = (size_t)(l->in.h + 2 * cv->pad) * s.wp + (size_t)cv->k;
    s.npix = (size_t)l->out.h * s.wp;
    return s;
}

// Winograd (winograd.c) for stride-1 3x3 and 5x5 convolutions with enough channels to make
// its 36 GEMMs worth it (16) and at least WINO_MIN_TILES tiles per image. The input gradient
// of a stride-1 convolution is itself one (of dy, with the kernels turned), so it is checked
// apart. Measured in training (batch 64, 2 threads), per step: 12x12 planes (9 tiles an
// image) in chunks of 15 images, 43 ms against 37 by im2col; 6x6 planes (4 tiles, 1.8x of
// them padding) 82 against 36. So small planes keep im2col. In chunks of 2 images (today's
// rule, ceil(256 / 144)) 12x12 planes pay, though: the deeper CNN's 64->128 layer, the two
// paths alternating in one process, forward 5.8 ms against 7.2, backward 11.3 against 13.0.
enum { WINO_MIN_TILES = 9 };

static int conv_wino_ok(const Layer *l) {
    const Conv *cv = (const Conv *)l;
    return cv->stride == 1 && cv->groups == 1 && (cv->k == 3 || cv->k == 5);
}
// Whether the Winograd paths fit a layer's shape (the workspace is sized for them when they
// do), and whether they run: not in bfloat16 mode, where the transformed tiles would be
// rounded to bfloat16 too and the direct path below is as fast on AMX and faster with
// AVX512-BF16 (session 17: the ensemble 10.0 against 10.8 ms a face with Winograd's products
// in bfloat16, and no faster with them in float32).
static int conv_wino_fits(const Layer *l) {   // the forward and the weight gradient
    const Conv *cv = (const Conv *)l;
    return conv_wino_ok(l) && l->in.c >= 16 &&
           wino_tiles(l->out.h, l->out.w, cv->k) >= WINO_MIN_TILES;
}
static int conv_wino_dx_fits(const Layer *l) {
    const Conv *cv = (const Conv *)l;
    return conv_wino_ok(l) && l->out.c >= 16 &&
           wino_tiles(l->in.h, l->in.w, cv->k) >= WINO_MIN_TILES;
}
static int conv_wino(const Layer *l) { return conv_wino_fits(l) && !emo_bf16(); }
static int conv_wino_dx(const Layer *l) { return conv_wino_dx_fits(l) && !emo_bf16(); }

// The bfloat16 path (AMX or AVX512-BF16; named amx_* for the first) for stride-1
// convolutions: no im2col. A chunk of m images is laid
// out zero-padded, channel-major ([c][image][hp x wp], plus k reals of slack per channel), and
// the rows of its im2col matrix, (channel c, tap t), are that layout from c's start plus the
// tap's offset (ty * wp + tx): a RowMap, which the AMX packing reads directly. The product's
// columns are then the padded planes' pixels, wp per output row (the last k-1 of each row and
// the padding rows between images are junk, computed and dropped). The input gradient is the
// same kind of product on dy padded by k-1-pad, with the kernels turned and transposed
// (W2[c][o][t] = W[o][c][kk-1-t]); the weight gradient is dY (junk columns zeroed) times the
// input's rows transposed. Chosen whenever bfloat16 is on and the shape fits.
typedef struct {
    int hp, wp;      // padded plane
    size_t ps, cs;   // plane and channel stride of the padded layout
    size_t n;        // product columns: (m - 1) * ps + oh * wp
    int off[49];     // the taps' offsets (k <= 7)
} AmxGeom;

// Worth it when the lowered matrix has at least 32 rows (one input channel stays on float32
// im2col) and at least 60 % of the padded plane's pixels are outputs (6x6 planes, 56 %, go by
// im2col onto AMX products: their junk would cost more than im2col).
static int conv_amx_fits(const Layer *l) {
    const Conv *cv = (const Conv *)l;
    long valid = (long)l->out.h * l->out.w;
    long padded = (long)(l->in.h + 2 * cv->pad) * (l->in.w + 2 * cv->pad);
    return cv->stride == 1 && cv->groups == 1 && cv->k <= 7 && cv->pad <= cv->k - 1 &&
           l->in.c * cv->k * cv->k >= 32 && 10 * valid >= 6 * padded &&
           sizeof(real) == sizeof(float);
}
static int conv_amx(const Layer *l) { return conv_amx_fits(l) && emo_bf16(); }
// The int8 path (i8_forward), when the weights were packed for it.
static int conv_i8_fits(const Layer *l) {
    const Conv *cv = (const Conv *)l;
    return cv->stride <= 4 && cv->groups == 1 && cv->k <= 7 && cv->pad <= cv->k - 1 &&
           l->in.c * cv->k * cv->k >= 32 && l->out.c >= 16 && sizeof(real) == sizeof(float);
}
static int conv_int8(const Layer *l) { return ((const Conv *)l)->i8_direct && emo_int8(); }

// A plane h x w, padded by pad, for a k x k stride-1 product over m images.
static AmxGeom amx_geom(int h, int w, int pad, int k, int m) {
    AmxGeom g;
    g.hp = h + 2 * pad, g.wp = w + 2 * pad;
    g.ps = (size_t)g.hp * g.wp;
    g.cs = (size_t)m * g.ps + (size_t)k;
    g.n = (size_t)(m - 1) * g.ps + (size_t)(g.hp - k + 1) * g.wp;
    for (int t = 0; t < k * k; t++) g.off[t] = t / k * g.wp + t % k;
    return g;
}

// m images of c planes h x w (image, channel and row strides is, cs, rs) into the padded
// layout at xp.
static void amx_pad(const real *x, size_t is, size_t cs, size_t rs, int c, int h, int w, int m,
                    AmxGeom g, int pad, real *xp) {
    for (int ci = 0; ci < c; ci++) {
        real *d = xp + ci * g.cs;
        memset(d, 0, g.cs * sizeof(real));
        for (int i = 0; i < m; i++)
            for (int r = 0; r < h; r++)
                memcpy(d + i * g.ps + (size_t)(r + pad) * g.wp + pad, x + i * is + ci * cs + r * rs,
                       (size_t)w * sizeof(real));
    }
}

// Images per chunk on the AMX path: products of at least AMX_CHUNK_N padded pixels.
static int amx_chunk(const Layer *l, int n) {
    const Conv *cv = (const Conv *)l;
    int ps = (l->in.h + 2 * cv->pad) * (l->in.w + 2 * cv->pad), c = (AMX_CHUNK_N + ps - 1) / ps;
    return c < n ? c : n;
}

// Workspace of the AMX path for chunks of m images, per thread (the forward needs the first
// two parts): padded input, product (or dY), padded dy, input-gradient product.
static size_t conv_ws_amx(const Layer *l, int m) {
    const Conv *cv = (const Conv *)l;
    AmxGeom g = amx_geom(l->in.h, l->in.w, cv->pad, cv->k, m);
    AmxGeom g2 = amx_geom(l->out.h, l->out.w, cv->k - 1 - cv->pad, cv->k, m);
    return (size_t)l->in.c * g.cs + (size_t)l->out.c * g.n + (size_t)l->out.c * g2.cs +
           (size_t)l->in.c * g2.n;
}

// The int8 path's geometry (i8_forward): the padded input's phase planes (one at stride 1),
// hq x wq, each with slack for the junk columns' reads past its end (emo_conv_i8).
typedef struct {
    int s, hq, wq, c4;   // stride, phase plane, quads of channels
    size_t plane, n;     // positions a plane, product columns (oh rows of wq)
} I8Geom;

static I8Geom i8_geom(const Layer *l) {
    const Conv *cv = (const Conv *)l;
    I8Geom g = {.s = cv->stride, .c4 = (l->in.c + 3) / 4};
    g.hq = (l->in.h + 2 * cv->pad + g.s - 1) / g.s;
    g.wq = (l->in.w + 2 * cv->pad + g.s - 1) / g.s;
    g.plane = (size_t)g.hq * g.wq + (size_t)cv->k + 32;
    g.n = (size_t)l->out.h * g.wq;
    return g;
}
// Its workspace: the planes (4 bytes a position: one real), the product, 4 rows of one phase.
static size_t conv_ws_i8(const Layer *l) {
    I8Geom g = i8_geom(l);
    return (size_t)g.s * g.s * g.c4 * g.plane + (size_t)l->out.c * g.n + (size_t)4 * l->in.w;
}

static size_t conv_ws_shift(const Layer *l) {   // per thread: padded input, padded output
    ShiftGeom s = shift_geom(l);
    return (size_t)l->in.c * s.ps + (size_t)l->out.c * s.npix;
}

static size_t conv_ntaps(const Layer *l) {   // reals in the weights laid out by tap
    const Conv *cv = (const Conv *)l;
    return (size_t)l->out.c * l->in.c * cv->k * cv->k;
}

// (out_c, in_c, k, k) -> (k*k, out_c, in_c)
static void conv_taps(const Conv *cv, int ic, int oc, real *taps) {
    int kk = cv->k * cv->k;
    for (int o = 0; o < oc; o++)
        for (int c = 0; c < ic; c++)
            for (int t = 0; t < kk; t++)
                taps[((size_t)t * oc + o) * ic + c] = cv->w[((size_t)o * ic + c) * kk + t];
}

// One image (in_c, h, w) into the zero-padded planes xp (in_c planes of ps reals).
static void shift_pad(const Layer *l, ShiftGeom s, const real *x, real *xp) {
    int pad = ((const Conv *)l)->pad, h = l->in.h, w = l->in.w;
    memset(xp, 0, (size_t)l->in.c * s.ps * sizeof(real));
    for (int c = 0; c < l->in.c; c++)
        for (int r = 0; r < h; r++)
            memcpy(xp + c * s.ps + (size_t)(r + pad) * s.wp + pad, x + ((size_t)c * h + r) * w,
                   (size_t)w * sizeof(real));
}

// One image through the shifted GEMMs into y (out_c, oh, ow), with bias and fused ReLU.
static void conv_forward_shift(Layer *l, const real *taps, const uint16_t *wpack, const real *x,
                               real *y, real *ws) {
    Conv *cv = (Conv *)l;
    int ic = l->in.c, oc = l->out.c, k = cv->k, oh = l->out.h, ow = l->out.w;
    ShiftGeom s = shift_geom(l);
    real *xp = ws, *yp = ws + (size_t)ic * s.ps;
    shift_pad(l, s, x, xp);
    for (int t = 0; t < k * k; t++)
        emo_gemm_packed(wpack ? wpack + t * cv->wpack_len : NULL, taps + (size_t)t * oc * ic, ic,
                        CblasNoTrans, oc, (int)s.npix, ic, xp + (size_t)(t / k) * s.wp + t % k,
                        (int)s.ps, t ? 1 : 0, yp, (int)s.npix);
    for (int o = 0; o < oc; o++) {
        real bo = cv->b ? cv->b[o] : 0;
        for (int r = 0; r < oh; r++)
            bias_relu(y + ((size_t)o * oh + r) * ow, yp + (size_t)o * s.npix + (size_t)r * s.wp,
                      (size_t)ow, bo, l->relu);
    }
}

static int conv_chunk(const Layer *l, int n) {
    // int8: one image at a time, so that each has its own input scale and a face's classes
    // do not depend on what it is batched with
    if (((const Conv *)l)->i8 && emo_int8()) return 1;
    if (conv_amx(l)) return amx_chunk(l, n);
    int hw = l->out.h * l->out.w, c = (CHUNK_N + hw - 1) / hw;
    return c < n ? c : n;
}

// Per-thread workspace: col (K x chunk*hw), a chunk-major output (oc x chunk*hw), and private
// weight and bias gradient accumulators. The weight gradient is accumulated transposed,
// dW^T (Kg x oc/g) += col . dY^T, which OpenBLAS runs faster than dW += dY . col^T (the long
// side first), and is transposed into dW once per batch; by Winograd, it is accumulated in
// the Winograd domain (36, oc, ic) and transformed back once per batch.
static size_t conv_grads_len(const Layer *l) {   // private weight and bias gradients
    const Conv *cv = (const Conv *)l;
    size_t n = (size_t)l->out.c * (l->in.c / cv->groups) * cv->k * cv->k;
    if (conv_wino_fits(l)) n = (size_t)36 * l->out.c * l->in.c;
    return n + l->out.c;
}

// For batches of up to nmax images, in either precision (it can change between calls).
static size_t conv_ws_thread(const Layer *l, int nmax) {
    const Conv *cv = (const Conv *)l;
    int hw = l->out.h * l->out.w, chunk = (CHUNK_N + hw - 1) / hw;
    if (chunk > nmax) chunk = nmax;
    size_t K = (size_t)l->in.c * cv->k * cv->k, nhw = (size_t)chunk * l->out.h * l->out.w;
    size_t lowered = K * nhw + (size_t)l->out.c * nhw;
    if (conv_shifted(l) && conv_ws_shift(l) > lowered) lowered = conv_ws_shift(l);
    size_t wf = conv_wino_fits(l) ? wino_ws(l->in.c, l->out.c, l->out.h, l->out.w, cv->k, chunk) : 0;
    size_t wb =
        conv_wino_dx_fits(l) ? wino_ws(l->out.c, l->in.c, l->in.h, l->in.w, cv->k, chunk) : 0;
    if (wf > lowered) lowered = wf;
    // the backward's Winograd passes (weights, input) run after col and dy
    lowered += wf > wb ? wf : wb;
    size_t amx = conv_amx_fits(l) ? conv_ws_amx(l, amx_chunk(l, nmax)) : 0;
    if (amx > lowered) lowered = amx;
    size_t i8 = conv_i8_fits(l) ? conv_ws_i8(l) : 0;
    if (i8 > lowered) lowered = i8;
    return lowered + conv_grads_len(l);
}

static int conv_threads(const Conv *cv, int nchunks) {
    int t = omp_get_max_threads();
    if (t > cv->threads) t = cv->threads;
    return t < nchunks ? t : nchunks;
}

// The AMX forward of images [i0, i0 + m) (see AmxGeom).
static void amx_forward(Layer *l, const real *x, real *y, int i0, int m, real *ws) {
    Conv *cv = (Conv *)l;
    int ic = l->in.c, oc = l->out.c, k = cv->k, oh = l->out.h, ow = l->out.w;
    size_t in_sz = (size_t)shape_size(l->in), hw = (size_t)oh * ow;
    AmxGeom g = amx_geom(l->in.h, l->in.w, cv->pad, k, m);
    real *xp = ws, *yp = ws + (size_t)ic * g.cs;
    amx_pad(x + i0 * in_sz, in_sz, (size_t)l->in.h * l->in.w, (size_t)l->in.w, ic, l->in.h,
            l->in.w, m, g, cv->pad, xp);
    emo_gemm_rows(0, 0, oc, (int)g.n, ic * k * k, (RowMap){cv->w, (size_t)ic * k * k, 1, NULL},
                  cv->wpack, (RowMap){xp, g.cs, k * k, g.off}, 0, yp, (int)g.n);
    for (int i = 0; i < m; i++)
        for (int o = 0; o < oc; o++) {
            real bo = cv->b ? cv->b[o] : 0;
            for (int r = 0; r < oh; r++)
                bias_relu(y + ((size_t)(i0 + i) * oc + o) * hw + (size_t)r * ow,
                          yp + (size_t)o * g.n + i * g.ps + (size_t)r * g.wp, (size_t)ow, bo,
                          l->relu);
        }
}

// dst[j] = src[j * step], j < n: one phase's columns of a row.
static void deal(const real *restrict src, int n, int step, real *restrict dst) {
    if (step == 2)
        for (int j = 0; j < n; j++) dst[j] = src[2 * j];
    else
        for (int j = 0; j < n; j++) dst[j] = src[(size_t)j * step];
}

// The int8 path, for frozen convolutions in int8 mode (gemm_i8.c), one image at a time (each
// with its own input scale: a face's classes do not depend on what it is batched with): the
// input quantized once, padded with the zero point, into planes of 4 channels interleaved
// (split into phases at stride 2 or more), which emo_conv_i8 reads in place for every tap: no
// im2col, no packing. The product's columns are a plane's pixels, wq a row, the last few of
// each row junk. Session 27, one core, A/B in one process: a VGG's layers 0.67 -> 0.51 ms a
// face (the packed-tile product of padded bytes, and im2col on 6x6 planes, before).
static void i8_forward(Layer *l, const real *x, real *y, real *ws) {
    Conv *cv = (Conv *)l;
    int ic = l->in.c, oc = l->out.c, h = l->in.h, w = l->in.w, oh = l->out.h, ow = l->out.w;
    int pad = cv->pad, k = cv->k;
    I8Geom g = i8_geom(l);
    int s = g.s;
    uint8_t *x4 = (uint8_t *)ws;
    real *yp = ws + (size_t)s * s * g.c4 * g.plane, *tmp = yp + (size_t)oc * g.n;
    emo_prefetch_i8(cv->i8);   // on their way while the input is quantized
    int used[4][4] = {{0}};    // the phases that some tap reads (a 1x1 shortcut: one of s * s)
    for (int t = 0; t < k * k; t++) used[t / k % s][t % k % s] = 1;
    float lo, hi;
    emo_range(x, (size_t)ic * h * w, &lo, &hi);
    EmoQuant q = emo_quant(lo, hi);
    for (int c = 0; c < ic; c += 4) {
        int nch = ic - c < 4 ? ic - c : 4;
        for (int ph = 0; ph < s * s; ph++)
            if (used[ph / s][ph % s])
                memset(x4 + ((size_t)ph * g.c4 + c / 4) * g.plane * 4, q.zero, g.plane * 4);
        for (int r = 0; r < h; r++) {
            const real *src = x + ((size_t)c * h + r) * w;
            int R = r + pad;
            if (s == 1) {
                emo_quantize4(src, (size_t)h * w, nch, (size_t)w, q,
                              x4 + ((size_t)c / 4 * g.plane + (size_t)R * g.wq + pad) * 4);
                continue;
            }
            for (int px = 0; px < s; px++) {   // the padded columns X = s * Q + px
                int X = pad + ((px - pad) % s + s) % s;   // the first one inside
                if (!used[R % s][px] || X >= pad + w) continue;
                int cnt = (pad + w - X + s - 1) / s;
                for (int ch = 0; ch < nch; ch++)
                    deal(src + (size_t)ch * h * w + X - pad, cnt, s, tmp + ch * cnt);
                size_t at = ((size_t)(R % s * s + px) * g.c4 + c / 4) * g.plane +
                            (size_t)(R / s) * g.wq + X / s;
                emo_quantize4(tmp, (size_t)cnt, nch, (size_t)cnt, q, x4 + at * 4);
            }
        }
    }
    emo_conv_i8(cv->i8, (int)g.n, x4, q, yp, (int)g.n);
    for (int o = 0; o < oc; o++) {
        real bo = cv->b ? cv->b[o] : 0;
        for (int r = 0; r < oh; r++)
            bias_relu(y + ((size_t)o * oh + r) * ow, yp + (size_t)o * g.n + (size_t)r * g.wq,
                      (size_t)ow, bo, l->relu);
    }
}

// The AMX backward of images [i0, i0 + m): dW (oc x ic*k*k) and db accumulate into dwt and
// db; dx (if not NULL) from the turned kernels w2 (ic x oc*k*k).
static void amx_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx,
                         const real *w2, int i0, int m, real *ws, real *dwt, real *db) {
    Conv *cv = (Conv *)l;
    int ic = l->in.c, oc = l->out.c, k = cv->k, oh = l->out.h, ow = l->out.w, kk = k * k;
    size_t in_sz = (size_t)shape_size(l->in), hw = (size_t)oh * ow;
    AmxGeom g = amx_geom(l->in.h, l->in.w, cv->pad, k, m);
    AmxGeom g2 = amx_geom(oh, ow, k - 1 - cv->pad, k, m);
    int p2 = k - 1 - cv->pad;
    real *xp = ws, *dyp = xp + (size_t)ic * g.cs, *dpad = dyp + (size_t)oc * g.n;
    real *dxp = dpad + (size_t)oc * g2.cs;
    // dY in the product's layout, junk zeroed, masked by a fused ReLU; and padded by p2
    memset(dyp, 0, (size_t)oc * g.n * sizeof(real));
    for (int o = 0; o < oc; o++) {
        real acc = 0;
        for (int i = 0; i < m; i++) {
            const real *s = dy + ((size_t)(i0 + i) * oc + o) * hw;
            const real *ys = y + ((size_t)(i0 + i) * oc + o) * hw;
            for (int r = 0; r < oh; r++) {
                real *d = dyp + (size_t)o * g.n + i * g.ps + (size_t)r * g.wp;
                const real *sr = s + (size_t)r * ow, *yr = ys + (size_t)r * ow;
                if (l->relu)
                    for (int c = 0; c < ow; c++) d[c] = yr[c] > 0 ? sr[c] : 0;
                else
                    memcpy(d, sr, (size_t)ow * sizeof(real));
                for (int c = 0; c < ow; c++) acc += d[c];
            }
        }
        if (db) db[o] += acc;
    }
    amx_pad(x + i0 * in_sz, in_sz, (size_t)l->in.h * l->in.w, (size_t)l->in.w, ic, l->in.h,
            l->in.w, m, g, cv->pad, xp);
    // dW (oc x ic*kk) += dY (oc x n) . rows(c, t)^T
    emo_gemm_rows(0, 1, oc, ic * kk, (int)g.n, (RowMap){dyp, g.n, 1, NULL}, NULL,
                  (RowMap){xp, g.cs, kk, g.off}, 1, dwt, ic * kk);
    if (!dx) return;
    // dy again (masked), padded by p2 for the transposed product
    amx_pad(dyp, g.ps, g.n, (size_t)g.wp, oc, oh, ow, m, g2, p2, dpad);
    emo_gemm_rows(0, 0, ic, (int)g2.n, oc * kk, (RowMap){w2, (size_t)oc * kk, 1, NULL}, NULL,
                  (RowMap){dpad, g2.cs, kk, g2.off}, 0, dxp, (int)g2.n);
    int h = l->in.h, w = l->in.w;
    for (int i = 0; i < m; i++)
        for (int ci = 0; ci < ic; ci++)
            for (int r = 0; r < h; r++)
                memcpy(dx + (i0 + i) * in_sz + ((size_t)ci * h + r) * w,
                       dxp + (size_t)ci * g2.n + i * g2.ps + (size_t)r * g2.wp,
                       (size_t)w * sizeof(real));
}

static void conv_forward(Layer *l, const real *x, real *y, int n, Ctx *c) {
    Conv *cv = (Conv *)l;
    int ic = l->in.c, oc = l->out.c, g = cv->groups, k = cv->k;
    size_t hw = (size_t)l->out.h * l->out.w, in_sz = (size_t)shape_size(l->in);
    int K = ic * k * k, Kg = K / g, ocg = oc / g, chunk = conv_chunk(l, n);
    int nchunks = (n + chunk - 1) / chunk, T = conv_threads(cv, nchunks);
    size_t per = conv_ws_thread(l, cv->nmax);
    if (conv_int8(l)) {
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
        for (int i = 0; i < n; i++)
            i8_forward(l, x + i * in_sz, y + (size_t)i * oc * hw, c->ws + per * (size_t)omp_get_thread_num());
        return;
    }
    if (conv_amx(l)) {
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
        for (int ch = 0; ch < nchunks; ch++) {
            int i0 = ch * chunk, m = n - i0 < chunk ? n - i0 : chunk;
            amx_forward(l, x, y, i0, m, c->ws + per * (size_t)omp_get_thread_num());
        }
        return;
    }
    if (conv_wino(l)) {
        const real *u = cv->wino;
        if (!u) {   // weights may change between calls: transformed after the thread areas
            real *t = c->ws + per * (size_t)cv->threads;
            wino_filter(cv->w, oc, ic, k, 0, t);
            u = t;
        }
        size_t ihw = (size_t)l->in.h * l->in.w;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
        for (int ch = 0; ch < nchunks; ch++) {
            int i0 = ch * chunk, m = n - i0 < chunk ? n - i0 : chunk;
            wino_conv(u, x + i0 * in_sz, in_sz, ihw, m, ic, l->in.h, l->in.w, cv->pad, k, oc,
                      cv->b, l->relu, y + (size_t)i0 * oc * hw, (size_t)oc * hw, hw,
                      c->ws + per * (size_t)omp_get_thread_num());
        }
        return;
    }
    if (conv_shifted(l)) {
        const real *taps = cv->taps;
        if (!taps) {   // weights may change between calls: by tap, after the thread areas
            real *t = c->ws + per * (size_t)cv->threads;
            conv_taps(cv, ic, oc, t);
            taps = t;
        }
        T = conv_threads(cv, n);
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
        for (int i = 0; i < n; i++)
            conv_forward_shift(l, taps, taps == cv->taps ? cv->wpack : NULL, x + i * in_sz,
                               y + (size_t)i * oc * hw,
                               c->ws + per * (size_t)omp_get_thread_num());
        return;
    }
#pragma omp parallel num_threads(T) if (T > 1)
    {
        real *col = c->ws + per * (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
        for (int ch = 0; ch < nchunks; ch++) {
            int i0 = ch * chunk, m = n - i0 < chunk ? n - i0 : chunk;
            size_t nhw = (size_t)m * hw;
            real *yb = m == 1 ? y + (size_t)i0 * oc * hw : col + (size_t)K * nhw;
            im2col_batch(x + i0 * in_sz, m, ic, l->in.h, l->in.w, k, cv->stride, cv->pad,
                         l->out.h, l->out.w, col);
            if (cv->i8 && emo_int8()) {   // one group
                float lo, hi;
                emo_range(x + i0 * in_sz, (size_t)m * in_sz, &lo, &hi);
                emo_gemm_i8(cv->i8, (int)nhw, (RowMap){col, nhw, 1, NULL}, lo, hi, yb, (int)nhw);
            } else {
                for (int gi = 0; gi < g; gi++)
                    emo_gemm_packed(cv->wpack ? cv->wpack + gi * cv->wpack_len : NULL,
                                    cv->w + (size_t)gi * ocg * Kg, Kg, CblasNoTrans, ocg,
                                    (int)nhw, Kg, col + (size_t)gi * Kg * nhw, (int)nhw, 0,
                                    yb + (size_t)gi * ocg * nhw, (int)nhw);
            }
            if (m == 1 && !cv->b && !l->relu) continue;
            for (int i = 0; i < m; i++)   // (oc, m, hw) -> (m, oc, hw), plus bias, ReLU
                for (int o = 0; o < oc; o++) {
                    real *d = y + ((size_t)(i0 + i) * oc + o) * hw;
                    const real *s = m == 1 ? d : yb + (size_t)o * nhw + i * hw;
                    real bo = cv->b ? cv->b[o] : 0;
                    bias_relu(d, s, hw, bo, l->relu);
                }
        }
    }
}

static void conv_backward(Layer *l, const real *x, const real *y, const real *dy, real *dx,
                          int n, Ctx *c) {
    Conv *cv = (Conv *)l;
    int ic = l->in.c, oc = l->out.c, g = cv->groups, k = cv->k;
    size_t hw = (size_t)l->out.h * l->out.w, in_sz = (size_t)shape_size(l->in);
    int K = ic * k * k, Kg = K / g, ocg = oc / g, chunk = conv_chunk(l, n);
    int nchunks = (n + chunk - 1) / chunk, T = conv_threads(cv, nchunks);
    size_t per = conv_ws_thread(l, cv->nmax);
    int wdw = conv_wino(l), wdx = dx && conv_wino_dx(l);
    size_t nw = wdw ? (size_t)36 * oc * ic : (size_t)oc * Kg;
    size_t gpos = per - conv_grads_len(l);   // the private gradients end each area
    real *udx = c->ws + per * (size_t)cv->threads;   // as in the forward
    if (conv_amx(l)) {
        int kk = k * k;
        if (dx)   // the turned kernels: W2[c][o][t] = W[o][c][kk-1-t]
            for (int o = 0; o < oc; o++)
                for (int ci = 0; ci < ic; ci++)
                    for (int t = 0; t < kk; t++)
                        udx[((size_t)ci * oc + o) * kk + t] =
                            cv->w[((size_t)o * ic + ci) * kk + kk - 1 - t];
        size_t nk = (size_t)oc * ic * kk;
#pragma omp parallel num_threads(T) if (T > 1)
        {
            real *ws = c->ws + per * (size_t)omp_get_thread_num(), *dwt = ws + gpos;
            memset(dwt, 0, (nk + oc) * sizeof(real));
#pragma omp for schedule(static)
            for (int ch = 0; ch < nchunks; ch++) {
                int i0 = ch * chunk, m = n - i0 < chunk ? n - i0 : chunk;
                amx_backward(l, x, y, dy, dx, udx, i0, m, ws, dwt, cv->db ? dwt + nk : NULL);
            }
        }
        for (int t = 0; t < T; t++) {   // sum the threads' private gradients
            const real *dwt = c->ws + per * (size_t)t + gpos;
            for (size_t i = 0; i < nk; i++) cv->dw[i] += dwt[i];
            if (cv->db)
                for (int o = 0; o < oc; o++) cv->db[o] += dwt[nk + o];
        }
        return;
    }
    if (wdx) wino_filter(cv->w, oc, ic, k, 1, udx);
#pragma omp parallel num_threads(T) if (T > 1)
    {
        real *col = c->ws + per * (size_t)omp_get_thread_num();
        real *dyb = col + (size_t)K * chunk * hw;
        real *dwt = col + gpos, *db = cv->db ? dwt + nw : NULL;   // private, summed below
        memset(dwt, 0, (nw + oc) * sizeof(real));
#pragma omp for schedule(static)
        for (int ch = 0; ch < nchunks; ch++) {
            int i0 = ch * chunk, m = n - i0 < chunk ? n - i0 : chunk;
            size_t nhw = (size_t)m * hw;
            const real *g_ = dy + (size_t)i0 * oc * hw, *yy = y + (size_t)i0 * oc * hw;
            if (m > 1 || l->relu) {   // (m, oc, hw) -> (oc, m*hw), masked by a fused ReLU
                for (int o = 0; o < oc; o++)
                    for (int i = 0; i < m; i++) {
                        real *d = dyb + (size_t)o * nhw + i * hw;
                        const real *s = g_ + ((size_t)i * oc + o) * hw;
                        const real *ys = yy + ((size_t)i * oc + o) * hw;
                        if (l->relu)
                            for (size_t p = 0; p < hw; p++) d[p] = ys[p] > 0 ? s[p] : 0;
                        else
                            memcpy(d, s, hw * sizeof(real));
                    }
                g_ = dyb;
            }
            if (db)
                for (int o = 0; o < oc; o++) {
                    const real *s = g_ + (size_t)o * nhw;
                    real acc = 0;
#pragma omp simd reduction(+ : acc)
                    for (size_t p = 0; p < nhw; p++) acc += s[p];
                    db[o] += acc;
                }
            real *wws = dyb + (size_t)oc * chunk * hw;   // Winograd's, after dy: g_ may be dyb
            size_t ihw = (size_t)l->in.h * l->in.w;
            if (wdw) {   // image i's channel o of dy at g_ + i*hw + o*nhw
                wino_dw(x + i0 * in_sz, in_sz, ihw, m, ic, l->in.h, l->in.w, cv->pad, k, g_, hw,
                        nhw, oc, dwt, wws);
            } else {
                im2col_batch(x + i0 * in_sz, m, ic, l->in.h, l->in.w, k, cv->stride, cv->pad,
                             l->out.h, l->out.w, col);
                for (int gi = 0; gi < g; gi++)   // dW_g^T (Kg x ocg) += col_g . dY_g^T
                    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, Kg, ocg, (int)nhw, 1,
                         col + (size_t)gi * Kg * nhw, (int)nhw, g_ + (size_t)gi * ocg * nhw,
                         (int)nhw, 1, dwt + (size_t)gi * Kg * ocg, ocg);
            }
            if (!dx) continue;
            if (wdx) {
                wino_conv(udx, g_, hw, nhw, m, oc, l->out.h, l->out.w, k - 1 - cv->pad, k, ic, NULL,
                          0, dx + i0 * in_sz, in_sz, ihw, wws);
                continue;
            }
            for (int gi = 0; gi < g; gi++)   // col is free now: reuse it for dcol
                GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, Kg, (int)nhw, ocg, 1,
                     cv->w + (size_t)gi * ocg * Kg, Kg, g_ + (size_t)gi * ocg * nhw, (int)nhw,
                     0, col + (size_t)gi * Kg * nhw, (int)nhw);
            col2im_batch(col, m, ic, l->in.h, l->in.w, k, cv->stride, cv->pad, l->out.h,
                         l->out.w, dx + i0 * in_sz);
        }
    }
    if (wdw) {   // sum the threads' Winograd-domain gradients into the first, then back
        real *du = c->ws + gpos;
        for (int t = 1; t < T; t++) {
            const real *s = c->ws + per * (size_t)t + gpos;
            for (size_t i = 0; i < nw + oc; i++) du[i] += s[i];
        }
        wino_dw_finish(du, oc, ic, k, cv->dw);
        if (cv->db)
            for (int o = 0; o < oc; o++) cv->db[o] += du[nw + o];
        return;
    }
    // sum the threads' private gradients, transposing dW: in blocks of TB columns k2, whose
    // strided reads (TB cache lines) stay in L1 while o runs
    enum { TB = 64 };
    int nb = (Kg + TB - 1) / TB;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)oc * Kg > PAR_MIN)
    for (int gi = 0; gi < g; gi++)
        for (int b = 0; b < nb; b++) {
            int k0 = b * TB, k1 = k0 + TB < Kg ? k0 + TB : Kg;
            for (int t = 0; t < T; t++) {
                const real *dwt = c->ws + per * (size_t)t + gpos + (size_t)gi * Kg * ocg;
                for (int o = 0; o < ocg; o++) {
                    real *d = cv->dw + ((size_t)gi * ocg + o) * Kg;
                    for (int k2 = k0; k2 < k1; k2++) d[k2] += dwt[(size_t)k2 * ocg + o];
                }
            }
        }
    if (cv->db)
        for (int t = 0; t < T; t++)
            for (int o = 0; o < oc; o++) cv->db[o] += c->ws[per * (size_t)t + gpos + nw + o];
}

static long conv_reserve(Layer *l, int n, int with_grads) {
    (void)with_grads;
    Conv *cv = (Conv *)l;
    cv->nmax = n;
    cv->threads = omp_get_max_threads();
    if (cv->threads < 1) cv->threads = 1;
    size_t taps = conv_shifted(l) ? conv_ntaps(l) : 0;
    if ((conv_wino_fits(l) || conv_wino_dx_fits(l)) && (size_t)36 * l->out.c * l->in.c > taps)
        taps = (size_t)36 * l->out.c * l->in.c;
    if (conv_amx_fits(l) && conv_ntaps(l) > taps) taps = conv_ntaps(l);   // the turned kernels
    return (long)(conv_ws_thread(l, n) * (size_t)cv->threads + taps);
}

static void conv_init(Layer *l, Rng *rng) {
    Conv *cv = (Conv *)l;
    int fan_in = l->in.c / cv->groups * cv->k * cv->k;
    real bound = (real)(1.0 / sqrt((double)fan_in));
    size_t nw = (size_t)l->out.c * fan_in;
    for (size_t i = 0; i < nw; i++) cv->w[i] = (2 * rng_uniform(rng) - 1) * bound;
    if (cv->b)
        for (int o = 0; o < l->out.c; o++) cv->b[o] = (2 * rng_uniform(rng) - 1) * bound;
}

static void conv_destroy(Layer *l) {
    free(((Conv *)l)->fold_b);
    free(((Conv *)l)->taps);
    free(((Conv *)l)->wino);
    free(((Conv *)l)->wpack);
    emo_free_i8(((Conv *)l)->i8);
}

static double conv_flops(const Layer *l) {
    const Conv *cv = (const Conv *)l;
    return 2.0 * l->out.c * l->out.h * l->out.w * (l->in.c / cv->groups) * cv->k * cv->k;
}

static const LayerOps CONV_OPS = {
    .kind = "conv",
    .forward = conv_forward,
    .backward = conv_backward,
    .reserve = conv_reserve,
    .init = conv_init,
    .destroy = conv_destroy,
    .flops = conv_flops,
    .fuse_relu = 1,
};

Layer *conv_new(Builder *b, Shape in, const char *name, int out_c, int k, int stride, int pad,
                int groups, int bias) {
    if (in.c % groups || out_c % groups)
        return builder_fail(b, "conv: groups=%d must divide in_c=%d and out=%d", groups, in.c,
                            out_c);
    if (in.h + 2 * pad < k || in.w + 2 * pad < k)
        return builder_fail(b, "conv: kernel %d does not fit input %dx%d with pad %d", k, in.h,
                            in.w, pad);
    if (pad >= k)
        return builder_fail(b, "conv: pad=%d must be smaller than k=%d", pad, k);
    Conv *cv = layer_alloc(b, sizeof *cv, &CONV_OPS, in, name);
    if (!cv) return NULL;
    cv->k = k;
    cv->stride = stride;
    cv->pad = pad;
    cv->groups = groups;
    cv->base.out = (Shape){out_c, (in.h + 2 * pad - k) / stride + 1,
                           (in.w + 2 * pad - k) / stride + 1};
    int wd[4] = {out_c, in.c / groups, k, k};
    if (builder_tensor(b, &cv->base, "w", 4, wd, &cv->w, &cv->dw, 0, 1) ||
        (bias && builder_tensor(b, &cv->base, "b", 1, &out_c, &cv->b, &cv->db, 0, 0))) {
        free(cv);
        return NULL;
    }
    return &cv->base;
}

Layer *conv_parse(Builder *b, Args *a, Shape in, const char *name) {
    int out, k, stride, pad, groups, bias;
    if (args_int(b, a, "out", 0, 1, 1, 65536, &out) || args_int(b, a, "k", 0, 1, 1, 63, &k) ||
        args_int(b, a, "stride", 1, 0, 1, 63, &stride) ||
        args_int(b, a, "pad", 0, 0, 0, 62, &pad) ||
        args_int(b, a, "groups", 1, 0, 1, 65536, &groups) ||
        args_int(b, a, "bias", 1, 0, 0, 1, &bias))
        return NULL;
    return conv_new(b, in, name, out, k, stride, pad, groups, bias);
}

int conv_fold(Layer *l, const real *scale, const real *shift) {
    if (l->ops != &CONV_OPS) return -1;
    Conv *cv = (Conv *)l;
    int oc = l->out.c;
    size_t per = (size_t)(l->in.c / cv->groups) * cv->k * cv->k;
    if (!cv->b) {
        if (!(cv->fold_b = real_alloc((size_t)oc))) return -1;
        memset(cv->fold_b, 0, (size_t)oc * sizeof(real));
        cv->b = cv->fold_b;
    }
    for (int o = 0; o < oc; o++) {
        for (size_t i = 0; i < per; i++) cv->w[o * per + i] *= scale[o];
        cv->b[o] = cv->b[o] * scale[o] + shift[o];
    }
    return 0;
}

int conv_freeze(Layer *l) {
    if (l->ops != &CONV_OPS) return -1;
    Conv *cv = (Conv *)l;
    if (conv_wino(l)) {   // the forward's path, as conv_forward picks it
        if (cv->wino) return 0;
        if (!(cv->wino = real_alloc((size_t)36 * l->out.c * l->in.c))) return -1;
        wino_filter(cv->w, l->out.c, l->in.c, cv->k, 0, cv->wino);
        return 0;
    }
    int shifted = conv_shifted(l);
    if (shifted && !cv->taps) {
        if (!(cv->taps = real_alloc(conv_ntaps(l)))) return -1;
        conv_taps(cv, l->in.c, l->out.c, cv->taps);
    }
    if (!emo_bf16()) return 0;
    // int8: stride 1 read in place (i8_forward), else the product of im2col's rows
    int K8 = l->in.c * cv->k * cv->k;
    if (emo_int8() && !cv->i8 && conv_i8_fits(l)) {
        I8Geom g = i8_geom(l);
        cv->i8 = emo_pack_i8_conv(l->out.c, l->in.c, cv->k, cv->stride, g.wq, g.plane, cv->w);
        cv->i8_direct = cv->i8 != NULL;
    }
    if (emo_int8() && !cv->i8 && cv->groups == 1 && K8 >= 32 && l->out.c >= 16 &&
        (conv_amx(l) || !shifted) && !(cv->i8 = emo_pack_i8(l->out.c, K8, cv->w, K8)))
        return -1;
    if (cv->wpack) return 0;
    if (conv_amx(l)) shifted = 0;   // the AMX path takes W as it is (oc x in_c*k*k)
    // by tap (oc x ic each) on the shifted path, else by group (oc/g x in_c/g*k*k each)
    int n = shifted ? cv->k * cv->k : cv->groups, M = l->out.c / (shifted ? 1 : cv->groups);
    int K = shifted ? l->in.c : l->in.c / cv->groups * cv->k * cv->k;
    cv->wpack_len = emo_packed_len(M, K);
    if (!(cv->wpack = aligned_alloc(64, (size_t)n * cv->wpack_len * sizeof(uint16_t)))) return -1;
    for (int i = 0; i < n; i++)
        emo_pack_a(M, K, (shifted ? cv->taps : cv->w) + (size_t)i * M * K, K,
                   cv->wpack + i * cv->wpack_len);
    return 0;
}
