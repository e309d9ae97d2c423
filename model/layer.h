// layer.h: what every layer file implements, and the pieces they share (builder, sequences,
// workspace, BLAS). Internal to model/.
#pragma once
#include <cblas.h>
#include <stdio.h>

#include "model.h"

// Every matrix product of the engine: cblas_sgemm's arguments (cblas_dgemm's in the double
// build); in bfloat16 mode the big row-major ones run on AMX tiles or AVX512-BF16 (model/gemm.c).
void emo_gemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
              real alpha, const real *A, int lda, const real *B, int ldb, real beta, real *C,
              int ldc);
#define GEMM emo_gemm

// For weights that stay fixed (frozen inference networks): A (M x K, row-major) packed once
// into bfloat16 tiles (emo_packed_len uint16 elements), and C = A op(B) + beta C from the
// packing, or from the float32 A when bfloat16 is off.
size_t emo_packed_len(int M, int K);
void emo_pack_a(int M, int K, const real *A, int lda, uint16_t *out);
void emo_gemm_packed(const uint16_t *ap, const real *A, int lda, CBLAS_TRANSPOSE tb, int M, int N,
                     int K, const real *B, int ldb, real beta, real *C, int ldc);

// A matrix given by its rows, each contiguous: row j starts at base + (j / per) * stride +
// off[j % per] (per 1, off NULL: a plain row-major matrix). Lowers a convolution without
// copying: the rows (channel c, tap t) of its im2col matrix are the channel's padded plane
// from the tap's offset on.
typedef struct {
    const real *base;
    size_t stride;
    int per;
    const int *off;
} RowMap;

// Where row j starts, in elements from base.
static inline size_t rowmap_at(size_t stride, int per, const int *off, int j) {
    return per == 1 ? (size_t)j * stride : (size_t)(j / per) * stride + off[j % per];
}

static inline const real *rowmap_row(RowMap m, int j) {
    return m.base + rowmap_at(m.stride, m.per, m.off, j);
}

// CPUID says OSXSAVE and the OS has enabled the AVX-512 register state (XCR0 bits 1-2, 5-7):
// the part every AVX-512 unit's probe shares (gemm.c, gemm_i8.c).
int emo_zmm_enabled(void);

// C (M x N) = op(A) op(B) + beta C (beta 0 or 1) in bfloat16, with op(X) as in emo_gemm: op(A)(i, k)
// is row i at k, or (ta) row k at i; op(B)(k, j) row k at j, or (tb) row j at k. apre: A
// packed by emo_pack_a instead (then ta must be 0). Only in bfloat16 mode.
void emo_gemm_rows(int ta, int tb, int M, int N, int K, RowMap A, const uint16_t *apre, RowMap B,
                   real beta, real *C, int ldc);

// 8-bit products for frozen convolutions (gemm_i8.c, in int8 mode): A (M x K, row-major)
// quantized per row and packed once; C (M x N, row stride ldc) = A B for B given by its rows
// (K rows of N), quantized on each call with one scale from [lo, hi], the range of the values
// B is made of (emo_range over the layer's input: B's rows are views of it, or copies).
typedef struct I8Pack I8Pack;
I8Pack *emo_pack_i8(int M, int K, const real *A, int lda);   // NULL when out of memory
void emo_free_i8(I8Pack *p);
void emo_range(const real *x, size_t n, float *lo, float *hi);   // min and max with 0
void emo_gemm_i8(const I8Pack *a, int N, RowMap B, float lo, float hi, real *C, int ldc);
typedef struct {
    float scale;   // x = scale (b - zero)
    int zero;      // 0 (an input never negative: scale hi / 255) or 128
} EmoQuant;
EmoQuant emo_quant(float lo, float hi);
void emo_quantize(const real *x, size_t n, EmoQuant q, uint8_t *out);   // round, clamp to [0, 255]
// A convolution's product read straight from its quantized input, no packing of B: the
// input's channels in quads (C rounded up to 4), each quad a padded plane of `plane`
// positions (at stride s, s*s planes a quad, one a phase: gemm_i8.c), wq a row, a position one
// dword of the quad's 4 channels (emo_quantize4: n positions of nch <= 4 channels cstride
// reals apart, channels past nch the zero point). W (M x C*k*k, a convolution's) is packed
// once for that geometry (NULL when out of memory, or for C*k*k of 65,000 or more). C (M x N,
// row stride ldc) = W X for the N output positions (plane pixels, wq a row; past the last,
// reads run up to 31 positions and the last tap's offset further: leave that much slack).
I8Pack *emo_pack_i8_conv(int M, int C, int k, int s, int wq, size_t plane, const real *W);
void emo_quantize4(const real *x, size_t cstride, int nch, size_t n, EmoQuant q, uint8_t *out);
void emo_conv_i8(const I8Pack *a, int N, const uint8_t *x4, EmoQuant q, real *C, int ldc);
void emo_prefetch_i8(const I8Pack *a);   // the first 32 rows' weights of emo_conv_i8, into cache
// A linear layer's 8-bit product (in int8 mode): Y (N x M, row stride ldy) = X A^T for X's N
// rows (stride ldx), A (M x K) quantized per row as above, each row of X with its own scale from
// its own range. For few rows: A is read once per four of them.
typedef struct I8Rows I8Rows;
I8Rows *emo_pack_i8_rows(int M, int K, const real *A, int lda);   // NULL when out of memory
void emo_free_i8_rows(I8Rows *p);
void emo_gemv_i8(const I8Rows *p, int N, const real *X, int ldx, real *Y, int ldy);

// Run a loop on several threads only when it is big enough to pay for the fork.
#define PAR_MIN 32768

typedef struct Layer Layer;
typedef struct Builder Builder;

typedef struct {
    int train;      // batch statistics, dropout
    int dropout;    // dropout active (train && net->dropout)
    Rng *rng;       // dropout masks
    real *ws;       // shared workspace, ws_len reals
    size_t ws_len;
    int infer;      // no backward will follow (a folded network): keep nothing for one
} Ctx;

typedef struct LayerOps {
    const char *kind;
    // y = f(x) for n samples. x is n x in, y is n x out.
    void (*forward)(Layer *l, const real *x, real *y, int n, Ctx *c);
    // Writes dx (skipped when NULL) and accumulates parameter gradients.
    void (*backward)(Layer *l, const real *x, const real *y, const real *dy, real *dx, int n,
                     Ctx *c);
    // Allocate per-batch state for n samples. Returns the workspace reals needed, -1 on OOM.
    long (*reserve)(Layer *l, int n, int with_grads);
    void (*init)(Layer *l, Rng *rng);   // optional
    void (*destroy)(Layer *l);          // optional: free kind-specific allocations
    double (*flops)(const Layer *l);    // optional: FLOPs per sample
    int fuse_relu;   // 1: the layer can apply a following ReLU to its own output
    int fuse_pool;   // 1: ... and, in training, a following 2x2 max-pool (maxpool_fusable)
} LayerOps;

struct Layer {
    const LayerOps *ops;
    Shape in, out;
    char name[80];   // tensor name prefix, e.g. "3.conv"
    // A ReLU right after a layer that can fuse it is done by that layer: the producer gets
    // relu=1 (it clamps its output, and masks dy by output > 0 in backward), and the ReLU
    // layer gets alias=1 (the chain skips it and shares the producer's buffers).
    int relu, alias;
    // A 2x2 stride-2 max-pool right after a layer that can fuse it (past a fused ReLU) is done
    // by that layer in training (Ctx.train): the producer gets pool=1 and writes the pooled
    // output into the max-pool's buffer (its own, and the ReLU's, stay unwritten), and takes
    // the max-pool's output gradient in backward; the max-pool gets pooled=1 and is skipped.
    // Outside training both run as usual.
    int pool, pooled;
};

// A chain of layers with one activation buffer (and one gradient buffer) per layer.
struct Seq {
    int n, cap;
    Layer **L;
    Shape in;
    real **out;   // out[i]: output of layer i, nmax x shape_size(L[i]->out)
    real **grad;  // grad[i]: dLoss/dout[i] (the last one is supplied by the caller)
    // Alias layers (fused ReLUs) own no buffers: out[i] is out[i-1], and grad[i-1] is grad[i].
    int borrowed;   // out[] point into a NetScratch (seq_reserve_shared, seq_bind): not owned
};

// Allocate a zeroed layer struct of `size` bytes (a kind's struct starts with a Layer), with
// ops, name and shapes set (out = in until the kind says otherwise). NULL on OOM.
void *layer_alloc(Builder *b, size_t size, const LayerOps *ops, Shape in, const char *name);
void layer_free(Layer *l);

Seq *seq_new(Shape in);
int seq_push(Seq *s, Layer *l);
void seq_free(Seq *s);
Shape seq_out(const Seq *s);
long seq_reserve(Seq *s, int nmax, int with_grads);   // workspace need, -1 on OOM
// Inference only, outputs in two shared buffers that the layers write in turn: reserves the
// layers (workspace need returned, -1 on OOM) and sets *act to the reals each buffer needs;
// seq_bind points the outputs at the buffers before each forward (they may have moved).
long seq_reserve_shared(Seq *s, int nmax, size_t *act);
void seq_bind(Seq *s, real *const act[2]);
// Output of the chain (x itself for an empty chain).
const real *seq_forward(Seq *s, const real *x, int n, Ctx *c);
void seq_backward(Seq *s, const real *x, const real *dy, real *dx, int n, Ctx *c);
// One training step (forward, then backward from dy, no input gradient) that adds each
// layer's milliseconds to fwd_ms[i] and bwd_ms[i]; a fused ReLU's or max-pool's time is its
// producer's.
void seq_profile(Seq *s, const real *x, const real *dy, int n, Ctx *c, double *fwd_ms,
                 double *bwd_ms);
void seq_init(Seq *s, Rng *rng);
double seq_flops(const Seq *s);

// ---- building: parameter registration and strict key=value arguments
typedef struct {
    real **ptr, **gptr;   // patched to point into the flat arrays once they exist
    Tensor t;
} Slot;

struct Builder {
    const char *file;
    int line;
    char *err;
    size_t errlen;
    Slot *slots;
    int nslots, cap;
    size_t nparams, nbufs;
    real in_mean, in_std;   // input normalisation from the 'input' line
};

// Register a tensor of layer l, e.g. builder_param(b, l, "w", 4, dims, &c->w, &c->dw, 1).
// gptr is NULL for buffers (is_buffer=1). Returns 0 or -1 (OOM).
int builder_tensor(Builder *b, const Layer *l, const char *suffix, int ndim, const int *dims,
                   real **ptr, real **gptr, int is_buffer, int decay);
// Report an error at the current line. Always returns NULL for `return builder_fail(...)`.
void *builder_fail(Builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum { ARGS_MAX = 16 };
typedef struct {
    int n;
    char *key[ARGS_MAX], *val[ARGS_MAX];
    int used[ARGS_MAX];
} Args;

// Each returns 0, or -1 with the error reported through b. A missing key takes def;
// def_required=1 makes it an error.
int args_int(Builder *b, Args *a, const char *key, int def, int required, int lo, int hi,
             int *out);
int args_real(Builder *b, Args *a, const char *key, double def, double lo, double hi,
              real *out);

// Parse architecture text into the top-level chain; *in receives the input shape.
Seq *arch_parse(Builder *b, const char *text, Shape *in);

// ---- the layer kinds (one file each). A constructor takes the input shape and returns the
// layer, or NULL with the error reported through b.
typedef Layer *(*LayerParse)(Builder *b, Args *a, Shape in, const char *name);

Layer *conv_parse(Builder *b, Args *a, Shape in, const char *name);
Layer *conv_new(Builder *b, Shape in, const char *name, int out_c, int k, int stride, int pad,
                int groups, int bias);
Layer *bn_parse(Builder *b, Args *a, Shape in, const char *name);
Layer *relu_parse(Builder *b, Args *a, Shape in, const char *name);
Layer *maxpool_parse(Builder *b, Args *a, Shape in, const char *name);
// Whether l is a max-pool that its producer may do (k=2, stride 2, no padding, even planes).
int maxpool_fusable(const Layer *l);

// The winner of a 2x2 window (a0 a1 above b0 b1), the first maximum in window order (as
// PyTorch picks it): its value, and its position 0..3 in *code. Branch-free, for simd loops.
static inline real maxpool2_pick(real a0, real a1, real b0, real b1, uint8_t *code) {
    int ca = a1 > a0, cb = b1 > b0;
    real a = ca ? a1 : a0, b = cb ? b1 : b0;
    int cr = b > a;
    *code = (uint8_t)(ca + cr * (2 + cb - ca));   // arithmetic, not a branch
    return cr ? b : a;
}
Layer *avgpool_parse(Builder *b, Args *a, Shape in, const char *name);
Layer *gap_parse(Builder *b, Args *a, Shape in, const char *name);
Layer *dropout_parse(Builder *b, Args *a, Shape in, const char *name);
Layer *dropout2d_parse(Builder *b, Args *a, Shape in, const char *name);
Layer *linear_parse(Builder *b, Args *a, Shape in, const char *name);
Layer *linear_new(Builder *b, Shape in, const char *name, int out, int bias);
Layer *flatten_parse(Builder *b, Args *a, Shape in, const char *name);
Layer *cbam_parse(Builder *b, Args *a, Shape in, const char *name);
Layer *residual_new(Builder *b, Seq *main, Seq *shortcut, const char *name);

// Blocks expose their sub-chains so that the network can walk them (folding, stats).
int residual_seqs(Layer *l, Seq **main, Seq **shortcut);

// Folding a batchnorm into the layer before it: the bn's per-channel scale and shift.
int bn_affine(Layer *bn, real *scale, real *shift);   // 0 if l is a batchnorm
int conv_fold(Layer *l, const real *scale, const real *shift);      // 0 on success
// A batchnorm's running-statistics momentum: read into *get (may be NULL), then set to m
// (m < 0: left as it is).
int bn_momentum(Layer *bn, real *get, real m);   // 0 if l is a batchnorm
// The weights will not change again (a folded, inference-only network): keep them in the
// Winograd domain, or laid out by tap for the shifted-GEMM path. 0, or -1 when l is no conv
// or memory runs out.
int conv_freeze(Layer *l);
int linear_fold(Layer *l, const real *scale, const real *shift);
// Likewise for a linear layer in bfloat16 mode: W packed into bfloat16 tiles (wide layers only).
int linear_freeze(Layer *l);

// Winograd convolution (winograd.c), stride 1, k = 3 or 5, on 6x6 input tiles of m = 7 - k
// output pixels a side. wino_filter lays out (oc, ic, k, k) weights as u (36, oc, ic); with
// flip, as the weights of the input gradient's convolution, u (36, ic, oc) of the kernels
// turned by 180 degrees. wino_conv convolves n images x (image i, channel c at x + i*xis +
// c*xcs) into y (likewise), plus bias (may be NULL) and an optional ReLU; ws holds wino_ws
// reals. The n images' tiles go through the same 36 GEMMs.
int wino_m(int k);
int wino_tiles(int oh, int ow, int k);
size_t wino_ws(int ic, int oc, int oh, int ow, int k, int n);
void wino_filter(const real *w, int oc, int ic, int k, int flip, real *u);
void wino_conv(const real *u, const real *x, size_t xis, size_t xcs, int n, int ic, int h, int w,
               int pad, int k, int oc, const real *bias, int relu, real *y, size_t yis,
               size_t ycs, real *ws);
// The weight gradient in the Winograd domain: du (36, oc, ic) += D . V^T for n images x and
// their output gradients dy (laid out as for wino_conv); ws as for wino_conv. wino_dw_finish
// adds G^T du G to the (oc, ic, k, k) weight gradient dw.
void wino_dw(const real *x, size_t xis, size_t xcs, int n, int ic, int h, int w, int pad, int k,
             const real *dy, size_t yis, size_t ycs, int oc, real *du, real *ws);
void wino_dw_finish(const real *du, int oc, int ic, int k, real *dw);

// The im2col convolution's pieces, shared with tests that compare against a naive loop.
void im2col_batch(const real *x, int n, int c, int h, int w, int k, int stride, int pad,
                  int oh, int ow, real *col);
void col2im_batch(const real *col, int n, int c, int h, int w, int k, int stride, int pad,
                  int oh, int ow, real *dx);

