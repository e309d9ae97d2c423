// model.h: emocam's CNN engine. One network type, built from architecture text, used both
// to train (emocam-train) and to classify faces live (emocam).
//
// Tensors are NCHW. The scalar type is `real`: float32 normally, double when the engine is
// compiled with EMOCAM_F64 (only the gradient-check tests do that). Files are always float32.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef EMOCAM_F64
typedef double real;
#else
typedef float real;
#endif

enum { EMO_ERRLEN = 512 };

// Per-sample shape of an activation: channels, height, width. A flat vector is (n, 1, 1).
typedef struct {
    int c, h, w;
} Shape;

static inline long shape_size(Shape s) { return (long)s.c * s.h * s.w; }

// ---- random numbers: explicit state, one generator per use (init, dropout, augmentation...)
typedef struct {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
float rng_uniform(Rng *r);          // [0, 1)
float rng_normal(Rng *r);           // N(0, 1)
int rng_int(Rng *r, int n);         // [0, n)

real *real_alloc(size_t n);   // malloc of n reals; NULL on failure

// ---- bfloat16 matrix products (Intel AMX, AVX512-BF16)
// The engine multiplies in float32. On CPUs with AMX-BF16 (Xeon Sapphire Rapids and later,
// Linux >= 5.16) or AVX512-BF16 (Xeon Cooper Lake, AMD Zen 4 and later) it can instead round
// the operands of its big matrix products to bfloat16 (8 significant bits) and multiply them
// on the tile unit or with VDPBF16PS, accumulating in float32: the mixed precision that GPUs
// train in, several times (AMX) or up to twice (AVX512-BF16) as fast. Process-wide; off by
// default.
enum { EMO_BF16_NONE, EMO_BF16_AMX, EMO_BF16_AVX512 };
int emo_bf16_available(void);   // the best unit this CPU and kernel allow (0: none)
int emo_set_bf16(int on);       // 0, or -1 when on is asked for and not available
int emo_bf16(void);             // 1: on
int emo_bf16_set_unit(int unit);   // pick AVX512-BF16 on an AMX CPU (tests); -1: not there
const char *emo_bf16_unit(void);   // "amx", "avx512-bf16" or "none"

// ---- 8-bit integer convolutions (AVX512-VNNI)
// Inference only, on top of bfloat16 mode: networks frozen in int8 mode (net_fold_bn) keep
// their convolutions' weights as 8-bit integers, one scale per output channel, and quantize
// each convolution's input to 8 bits on the fly (one scale per call, from its range), so that
// VPDPBUSD multiplies four bytes where VDPBF16PS multiplies two bfloat16. Wide linear layers
// (at least 64 inputs and 32 outputs) keep 8-bit weights too and quantize each input vector on
// its own; the other products stay in bfloat16. Needs AVX512-VNNI (Ice Lake and later Xeons, AMD Zen 4 and later) and
// AVX512-BF16 or AMX. Process-wide; off by default.
int emo_int8_available(void);   // 1: this CPU can
int emo_set_int8(int on);       // on: also turns bfloat16 on; 0, or -1 when not available
int emo_int8(void);             // 1: on

// ---- the network
typedef struct Net Net;
typedef struct Seq Seq;

// Activation buffers and workspace that several folded networks share when they run one after
// another on one thread (an ensemble's members): each network's top-level layers write their
// outputs into two buffers in turn, and every network uses the one workspace, so a face's
// pass through all of them touches a few hundred kB that stay in cache, not megabytes per
// network. Grown as the networks need; owned by whoever made it (zeroed: empty).
typedef struct {
    real *act[2];
    size_t act_len;   // reals in each act buffer
    real *ws;
    size_t ws_len;
} NetScratch;
void net_scratch_free(NetScratch *s);

// A named view into the network's flat parameter (or buffer) array.
typedef struct {
    char name[96];       // e.g. "3.conv.w", "5.res.main.1.bn.running_mean"
    int ndim, dims[4];
    size_t off, count;   // offset into Net.params (or Net.bufs), element count
    int is_buffer;       // 1: running statistic, saved but not trained
    int decay;           // 1: weight decay applies (conv/linear weights)
} Tensor;

struct Net {
    char *arch;          // the architecture text this net was built from
    char *file;          // where the text came from (for messages)
    Seq *seq;            // the top-level layer sequence
    Shape in, out;
    real in_mean, in_std;  // pixels p (0..255) enter the network as (p - in_mean) / in_std
    real *params, *grads;  // one allocation each; layers hold views into them
    size_t nparams;
    real *bufs;          // running statistics
    size_t nbufs;
    Tensor *tensors;     // params first, in layer order, then their buffers interleaved
    int ntensors;
    real *ws;            // shared workspace (im2col etc.)
    size_t ws_len;
    int nmax;            // batch capacity of the activation buffers
    int threads;         // OpenMP threads the workspace was sized for
    int grads_on;        // activation gradient buffers allocated
    int dropout;         // 1 (default): dropout active in training mode
    int folded;          // batchnorm folded for inference: cannot train or save
    int last_train;      // mode of the last forward, which net_backward follows
    NetScratch *scratch; // not owned: activations and workspace live there (net_use_scratch)
};

// Parse architecture text. `file` names the source in messages. NULL on error, with the
// reason ("file:line: ...") in err.
Net *net_parse(const char *text, const char *file, char *err, size_t errlen);
Net *net_parse_file(const char *path, char *err, size_t errlen);
void net_free(Net *net);

// Make room for batches of up to nmax samples; with_grads also allocates what training needs.
// Returns 0, or -1 (out of memory, message in err).
int net_reserve(Net *net, int nmax, int with_grads, char *err, size_t errlen);
// A folded network from now on keeps its activations and workspace in s, shared with other
// networks that use s (NULL: its own again). Then what net_forward returns lasts until the next
// forward of any network on s, and net_layer_output holds only the last layer's output. 0, or
// -1 (not folded, or out of memory: message in err).
int net_use_scratch(Net *net, NetScratch *s, char *err, size_t errlen);

// PyTorch's default initialisation (uniform +-1/sqrt(fan_in)); batchnorm gamma 1, beta 0.
void net_init(Net *net, Rng *rng);

// Forward n <= nmax samples. train=1 uses batch statistics (and updates running ones) and
// dropout drawn from rng. Returns the output, n x shape_size(out), owned by the net.
const real *net_forward(Net *net, const real *x, int n, int train, Rng *rng);
// Backward after a forward of the same x, in the same mode (training, or eval for saliency
// and Grad-CAM): dy is dLoss/dOutput. Parameter gradients accumulate into net->grads; dx (may
// be NULL) receives dLoss/dInput. Needs net_reserve(..., with_grads=1). A folded network keeps
// nothing for a backward: there it does nothing.
void net_backward(Net *net, const real *x, const real *dy, real *dx, int n, Rng *rng);

// One training step on n samples, timed per top-level layer: adds milliseconds to fwd_ms[i]
// and bwd_ms[i] (arrays of net_nlayers entries). Runs a plain forward first to reserve.
void net_profile(Net *net, const real *x, const real *dy, int n, Rng *rng, double *fwd_ms,
                 double *bwd_ms);

// The top-level layers, for inspection (Grad-CAM, activation maps): count, name and output
// shape, the output of the last forward, and its gradient after net_backward (NULL for the
// last layer or without gradients). A ReLU fused into the layer before it shares its output.
// After a training forward, a batchnorm that does the 2x2 max-pool after it (layer.h) has
// stored neither its output nor its ReLU's (nor, after backward, their gradients): inspect
// those after an inference forward.
int net_nlayers(const Net *net);
const char *net_layer_info(const Net *net, int i, Shape *out);
const real *net_layer_output(const Net *net, int i);
double net_layer_flops(const Net *net, int i);   // forward FLOPs per sample (0: none counted)
const real *net_layer_grad(const Net *net, int i);
void net_zero_grad(Net *net);

const Tensor *net_tensor(const Net *net, const char *name);
real *net_tensor_data(Net *net, const Tensor *t);
size_t net_count_params(const Net *net);   // trainable elements
// Forward multiply-adds x2 per sample (FLOPs), for benchmarks.
double net_flops(const Net *net);

// Re-estimate every batchnorm's running statistics as the plain mean of their values over
// the n inputs x, forwarded in training mode in batches of `batch`, with dropout drawn from
// rng or (rng NULL) without dropout: after averaging weights (PyTorch's swa_utils.update_bn).
// Parameters are untouched; momenta are restored. 0, or -1 with the reason in err.
int net_bn_update(Net *net, const real *x, int n, int batch, Rng *rng, char *err, size_t errlen);
// Fold each batchnorm into the conv or linear layer before it (inference only).
void net_fold_bn(Net *net);

// Weights files: magic, version, architecture text, named typed tensors, checksum.
int net_save(const Net *net, const char *path, char *err, size_t errlen);
// The same with every tensor stored as float16 when f16 (half the size: for shipping weights;
// each value is rounded to 11 significant bits, and one beyond +-65504 is refused).
int net_save_as(const Net *net, const char *path, int f16, char *err, size_t errlen);
Net *net_load(const char *path, char *err, size_t errlen);

// The one preprocessing function, shared by training and the live recognizer: n face crops
// of net->in size, 8-bit grayscale (row-major, tightly packed), to the network's input.
void net_preprocess(const Net *net, const uint8_t *pixels, int n, real *x);

// Softmax cross-entropy over k classes, PyTorch semantics: class weights cw (NULL: all 1),
// label smoothing eps, mean over the batch (weighted mean when cw is given). Writes the
// probabilities (may be NULL) and dLoss/dLogits (may be NULL). Returns the loss.
double softmax_xent(const real *logits, const int *labels, int n, int k, const real *cw,
                    real eps, real *probs, real *dlogits);
// The same with a target distribution per sample instead of a label: target (n, k), each row
// summing to 1 (knowledge distillation's soft targets), class weights cw (NULL: all 1).
// torch.nn.functional.cross_entropy(logits, target, weight=cw): the plain mean over the batch.
double softmax_xent_probs(const real *logits, const real *target, int n, int k, const real *cw,
                          real *probs, real *dlogits);
void softmax(const real *logits, int n, int k, real *probs);
