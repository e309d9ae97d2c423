// test_conv_naive.c: the im2col + sgemm convolution, the shifted-GEMM forward and the Winograd
// forward and gradients, against a direct seven-loop convolution, computed in double:
// forward, input gradient, weight and bias gradients, over a grid of batch sizes (1 takes its
// own path), strides, pads, kernels, groups and non-square inputs. Also the exported
// im2col_batch / col2im_batch against their definitions.
//
// The engine cuts a batch into chunks of ceil(256 / (oh*ow)) images, lowered by one thread each
// (with private gradient accumulators when several threads run): the extra shapes below make
// batches of several chunks, ragged last chunks and one-image chunks inside a batch. Some nets
// end in a relu, which the engine fuses into the convolution.
//
// Tolerance: |got - want| <= TOL * scale, where scale is the sum of the absolute values of the
// terms that make the element (the float error of a sum grows with it, not with its result).
//
// On a CPU with AMX or AVX512-BF16 the whole grid runs again in bfloat16 mode (the paths: stride-1
// convolutions without im2col, im2col products on tiles, weights packed once frozen). Rounding
// both factors of each term to bfloat16 (8 significant bits) moves it by at most 2 * 2^-8 of its
// size (measured worst: 6.1e-3), so the bound is TOL = 1e-2 of scale there.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "testutil.h"

static double TOL = 1e-5;   // 1e-2 for the bfloat16 pass

typedef struct {
    int n, c, h, w, oc, k, stride, pad, groups;
    int bias, relu;   // conv bias=..; a relu after the conv
    int nmax;         // reserve this batch first (0: let the forward reserve n)
    int thr_reserve, thr_run;   // OpenMP threads when reserving, when running (0: as is)
    int oh, ow;
} Geo;

static double urand(Rng *r) { return 2.0 * rng_uniform(r) - 1; }

static real *alloc_rand(size_t len, Rng *rng) {
    real *p = malloc((len ? len : 1) * sizeof *p);
    if (p)
        for (size_t i = 0; i < len; i++) p[i] = (real)urand(rng);
    return p;
}

// The direct convolution: y, dx, dw, db in double, each with its scale (sum of |terms|).
typedef struct {
    double *y, *ys, *dx, *dxs, *dw, *dws, *db, *dbs;
} Ref;

static void ref_free(Ref *r) {
    free(r->y);
    free(r->ys);
    free(r->dx);
    free(r->dxs);
    free(r->dw);
    free(r->dws);
    free(r->db);
    free(r->dbs);
}

static int naive(const Geo *g, const real *x, const real *w, const real *b, const real *dy,
                 Ref *r) {
    size_t ny = (size_t)g->n * g->oc * g->oh * g->ow, nx = (size_t)g->n * g->c * g->h * g->w;
    int icg = g->c / g->groups, ocg = g->oc / g->groups;
    size_t nw = (size_t)g->oc * icg * g->k * g->k;
    r->y = calloc(ny, sizeof(double));
    r->ys = calloc(ny, sizeof(double));
    r->dx = calloc(nx, sizeof(double));
    r->dxs = calloc(nx, sizeof(double));
    r->dw = calloc(nw, sizeof(double));
    r->dws = calloc(nw, sizeof(double));
    r->db = calloc((size_t)g->oc, sizeof(double));
    r->dbs = calloc((size_t)g->oc, sizeof(double));
    if (!r->y || !r->ys || !r->dx || !r->dxs || !r->dw || !r->dws || !r->db || !r->dbs)
        return -1;
    for (int i = 0; i < g->n; i++)                       // 1 sample
        for (int o = 0; o < g->oc; o++)                  // 2 output channel
            for (int oy = 0; oy < g->oh; oy++)           // 3 output row
                for (int ox = 0; ox < g->ow; ox++) {     // 4 output column
                    size_t yi = (((size_t)i * g->oc + o) * g->oh + oy) * g->ow + ox;
                    double acc = b ? b[o] : 0, sc = b ? fabs(b[o]) : 0, gy = dy[yi];
                    r->db[o] += gy;
                    r->dbs[o] += fabs(gy);
                    int gi = o / ocg;
                    for (int cl = 0; cl < icg; cl++)               // 5 input channel
                        for (int kh = 0; kh < g->k; kh++)          // 6 kernel row
                            for (int kw = 0; kw < g->k; kw++) {    // 7 kernel column
                                int iy = oy * g->stride - g->pad + kh;
                                int ix = ox * g->stride - g->pad + kw;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                                int ci = gi * icg + cl;
                                size_t xi = (((size_t)i * g->c + ci) * g->h + iy) * g->w + ix;
                                size_t wi = (((size_t)o * icg + cl) * g->k + kh) * g->k + kw;
                                acc += (double)w[wi] * x[xi];
                                sc += fabs((double)w[wi] * x[xi]);
                                r->dx[xi] += (double)w[wi] * gy;
                                r->dxs[xi] += fabs((double)w[wi] * gy);
                                r->dw[wi] += gy * x[xi];
                                r->dws[wi] += fabs(gy * x[xi]);
                            }
                    r->y[yi] = acc;
                    r->ys[yi] = sc;
                }
    return 0;
}

// Count (and report the first of) the elements off by more than TOL * scale.
static int compare(const char *what, const char *geo, const real *got, const double *want,
                   const double *scale, size_t len, double *worst) {
    int bad = 0;
    for (size_t i = 0; i < len; i++) {
        double err = fabs(got[i] - want[i]) / fmax(scale[i], 1e-30);
        if (!(err <= TOL)) {   // NaN fails too
            if (!bad)
                CHECK(0, "%s %s[%zu]: got %.9g, want %.9g (scale %.3g)", geo, what, i,
                      (double)got[i], want[i], scale[i]);
            bad++;
        }
        if (scale[i] > 0 && err > *worst) *worst = err;
    }
    return bad;
}

static double worst_all = 0;
static int nets_checked = 0;

static void check_conv(const Geo *g0, Rng *rng) {
    Geo g = *g0;
    char geo[160], arch[200], err[EMO_ERRLEN];
    snprintf(geo, sizeof geo,
             "n=%d (nmax %d) c=%d %dx%d out=%d k=%d stride=%d pad=%d groups=%d bias=%d%s "
             "threads %d/%d",
             g.n, g.nmax, g.c, g.h, g.w, g.oc, g.k, g.stride, g.pad, g.groups, g.bias,
             g.relu ? " +relu" : "", g.thr_reserve, g.thr_run);
    snprintf(arch, sizeof arch,
             "input c=%d h=%d w=%d\nconv out=%d k=%d stride=%d pad=%d groups=%d bias=%d%s", g.c,
             g.h, g.w, g.oc, g.k, g.stride, g.pad, g.groups, g.bias, g.relu ? "\nrelu" : "");
    Net *net = net_parse(arch, "conv-naive", err, sizeof err);
    if (g.pad >= g.k) {   // the engine refuses pad >= k (a documented limit of conv_new)
        CHECK(net == NULL && strstr(err, "pad="), "%s: pad >= k accepted", geo);
        net_free(net);
        return;
    }
    CHECK(net != NULL, "%s: %s", geo, err);
    if (!net) return;
    g.oh = (g.h + 2 * g.pad - g.k) / g.stride + 1;
    g.ow = (g.w + 2 * g.pad - g.k) / g.stride + 1;
    CHECK(net->out.c == g.oc && net->out.h == g.oh && net->out.w == g.ow,
          "%s: output %dx%dx%d, want %dx%dx%d", geo, net->out.c, net->out.h, net->out.w, g.oc,
          g.oh, g.ow);
    const Tensor *tw = net_tensor(net, "0.conv.w");
    const Tensor *tb = net_tensor(net, "0.conv.b");
    CHECK(tw && (tb != NULL) == g.bias, "%s: tensors 0.conv.w / 0.conv.b", geo);
    size_t nx = (size_t)g.n * g.c * g.h * g.w, ny = (size_t)g.n * g.oc * g.oh * g.ow;
    real *x = alloc_rand(nx, rng), *dy = alloc_rand(ny, rng), *dx = malloc(nx * sizeof *dx);
    real *dw1 = NULL, *yr = malloc(ny * sizeof *yr);
    Ref r = {0};
    if (!tw || (tb != NULL) != g.bias || !x || !dy || !dx || !yr) goto done;
    int threads = omp_get_max_threads();
    if (g.thr_reserve) omp_set_num_threads(g.thr_reserve);
    if (g.nmax) CHECK(net_reserve(net, g.nmax, 1, err, sizeof err) == 0, "%s", err);
    omp_set_num_threads(g.thr_run ? g.thr_run : threads);
    real *w = net_tensor_data(net, tw), *b = tb ? net_tensor_data(net, tb) : NULL;
    for (size_t i = 0; i < tw->count; i++) w[i] = (real)urand(rng);
    for (size_t i = 0; b && i < tb->count; i++) b[i] = (real)urand(rng);
    double worst = 0;
    Rng drop;
    rng_seed(&drop, 1);
    const real *y = net_forward(net, x, g.n, 1, &drop);
    CHECK(y != NULL, "%s: forward failed", geo);
    if (!y) goto done;
    memcpy(yr, y, ny * sizeof *yr);
    // behind a relu, the gradient reaching the conv is dy where the output is positive
    if (g.relu)
        for (size_t i = 0; i < ny; i++) dy[i] = yr[i] > 0 ? dy[i] : 0;
    if (naive(&g, x, w, b, dy, &r)) {
        CHECK(0, "out of memory");
        goto done;
    }
    omp_set_num_threads(threads);
    if (g.relu)
        for (size_t i = 0; i < ny; i++) r.y[i] = r.y[i] > 0 ? r.y[i] : 0;
    compare("y", geo, yr, r.y, r.ys, ny, &worst);
    net_zero_grad(net);
    for (size_t i = 0; i < nx; i++) dx[i] = NAN;
    omp_set_num_threads(g.thr_run ? g.thr_run : threads);
    net_backward(net, x, dy, dx, g.n, &drop);
    omp_set_num_threads(threads);
    compare("dx", geo, dx, r.dx, r.dxs, nx, &worst);
    compare("dw", geo, net->grads + tw->off, r.dw, r.dws, tw->count, &worst);
    if (tb) compare("db", geo, net->grads + tb->off, r.db, r.dbs, tb->count, &worst);
    // without dx the parameter gradients are the same, and they accumulate
    dw1 = malloc(net->nparams * sizeof *dw1);
    if (!dw1) goto done;
    memcpy(dw1, net->grads, net->nparams * sizeof *dw1);
    net_zero_grad(net);
    omp_set_num_threads(g.thr_run ? g.thr_run : threads);
    net_backward(net, x, dy, NULL, g.n, &drop);
    CHECK(memcmp(dw1, net->grads, net->nparams * sizeof *dw1) == 0,
          "%s: parameter gradients differ when dx is NULL", geo);
    net_backward(net, x, dy, NULL, g.n, &drop);
    omp_set_num_threads(threads);
    int acc_bad = 0;   // threads' partial sums are added in turn: rounding is on their scale
    for (size_t i = 0; i < tw->count; i++) {
        double got = net->grads[tw->off + i], want = 2 * (double)dw1[tw->off + i];
        if (!(fabs(got - want) <= 2 * TOL * r.dws[i])) {
            if (!acc_bad)
                CHECK(0, "%s: after two backwards dw[%zu] = %.9g, want 2 x %.9g", geo, i, got,
                      (double)dw1[tw->off + i]);
            acc_bad++;
        }
    }
    // inference forward: the same output
    y = net_forward(net, x, g.n, 0, NULL);
    CHECK(y != NULL, "%s: eval forward failed", geo);
    if (y) compare("y(eval)", geo, y, r.y, r.ys, ny, &worst);
    // frozen for inference (net_fold_bn with no batchnorm to fold): the weights by tap are
    // kept by the layer instead of laid out at each call; the same output
    net_fold_bn(net);
    y = net_forward(net, x, g.n, 0, NULL);
    CHECK(y != NULL, "%s: frozen forward failed", geo);
    if (y) compare("y(frozen)", geo, y, r.y, r.ys, ny, &worst);
    if (worst > worst_all) worst_all = worst;
    nets_checked++;
done:
    ref_free(&r);
    free(yr);
    free(x);
    free(dy);
    free(dx);
    free(dw1);
    net_free(net);
}

// im2col_batch is a pure gather: exact. col2im_batch sums: within TOL of a double sum.
static int im2col_checked = 0;

static void check_im2col(int n, int c, int h, int w, int k, int stride, int pad, Rng *rng) {
    if (h + 2 * pad < k || w + 2 * pad < k) return;
    int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    size_t nx = (size_t)n * c * h * w, nhw = (size_t)n * oh * ow, ncol = (size_t)c * k * k * nhw;
    real *x = alloc_rand(nx, rng), *col = malloc(ncol * sizeof *col);
    real *dcol = alloc_rand(ncol, rng), *dx = malloc(nx * sizeof *dx);
    double *want = calloc(nx, sizeof *want), *scale = calloc(nx, sizeof *scale);
    char geo[120];
    snprintf(geo, sizeof geo, "im2col n=%d c=%d %dx%d k=%d stride=%d pad=%d", n, c, h, w, k,
             stride, pad);
    if (!x || !col || !dcol || !dx || !want || !scale) goto done;
    for (size_t i = 0; i < ncol; i++) col[i] = NAN;
    im2col_batch(x, n, c, h, w, k, stride, pad, oh, ow, col);
    int bad = 0;
    // col[(ci*k + kh)*k + kw][i*oh*ow + oy*ow + ox] = x[i][ci][oy*stride-pad+kh][ox*stride-pad+kw]
    for (int ci = 0; ci < c; ci++)
        for (int kh = 0; kh < k; kh++)
            for (int kw = 0; kw < k; kw++)
                for (int i = 0; i < n; i++)
                    for (int oy = 0; oy < oh; oy++)
                        for (int ox = 0; ox < ow; ox++) {
                            size_t row = ((size_t)ci * k + kh) * k + kw;
                            size_t ci_ = row * nhw + ((size_t)i * oh + oy) * ow + ox;
                            int iy = oy * stride - pad + kh, ix = ox * stride - pad + kw;
                            int in = iy >= 0 && iy < h && ix >= 0 && ix < w;
                            size_t xi = (((size_t)i * c + ci) * h + iy) * w + ix;
                            real v = in ? x[xi] : 0;
                            if (memcmp(&col[ci_], &v, sizeof v) != 0) {
                                if (!bad)
                                    CHECK(0, "%s: col[%zu] = %g, want %g", geo, ci_,
                                          (double)col[ci_], (double)v);
                                bad++;
                            }
                            if (in) {
                                want[xi] += dcol[ci_];
                                scale[xi] += fabs(dcol[ci_]);
                            }
                        }
    for (size_t i = 0; i < nx; i++) dx[i] = NAN;
    col2im_batch(dcol, n, c, h, w, k, stride, pad, oh, ow, dx);
    int cbad = 0;   // report the first bad element only
    for (size_t i = 0; i < nx; i++)
        if (!(fabs(dx[i] - want[i]) <= TOL * scale[i]) && !cbad++)
            CHECK(0, "%s: col2im dx[%zu] = %g, want %g", geo, i, (double)dx[i], want[i]);
    im2col_checked++;
done:
    free(x);
    free(col);
    free(dcol);
    free(dx);
    free(want);
    free(scale);
}

static int run_grid(Rng *rng) {
    static const int sizes[][2] = {{7, 5}, {6, 9}};
    for (int ni = 0; ni < 2; ni++)
        for (int si = 0; si < 2; si++)
            for (int stride = 1; stride <= 2; stride++)
                for (int pad = 0; pad <= 2; pad++)
                    for (int k = 1; k <= 5; k += 2)
                        for (int gk = 0; gk < 3; gk++) {
                            int c = 4, groups = gk == 0 ? 1 : gk == 1 ? 2 : c;
                            int oc = gk == 2 ? 8 : 6;   // depthwise with multiplier 2
                            Geo g = {ni ? 3 : 1, c, sizes[si][0], sizes[si][1], oc, k,
                                     stride, pad, groups, stride == 1, pad == 1, 0, 0, 0, 0, 0};
                            check_conv(&g, rng);
                        }
    // batches of several chunks: one image per chunk (oh*ow >= 256), ragged last chunks, a
    // one-image last chunk, a workspace reserved for a bigger batch, wider layers
    static const Geo chunked[] = {
        // n  c   h   w  oc  k  s  p  g  bias relu nmax, threads reserving / running
        {3, 2, 17, 16, 4, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
        {3, 2, 17, 16, 4, 3, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
        {3, 2, 17, 16, 4, 3, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0},
        {2, 4, 16, 18, 4, 3, 1, 1, 4, 1, 1, 0, 0, 0, 0, 0},
        {5, 4, 10, 10, 6, 3, 1, 1, 2, 1, 0, 0, 0, 0, 0, 0},
        {5, 4, 10, 10, 6, 3, 1, 1, 2, 1, 1, 0, 0, 0, 0, 0},
        {7, 3, 12, 12, 6, 5, 1, 2, 3, 1, 0, 0, 0, 0, 0, 0},
        {7, 3, 12, 12, 6, 5, 1, 2, 3, 0, 1, 0, 0, 0, 0, 0},
        {4, 3, 12, 12, 6, 3, 1, 1, 1, 1, 0, 9, 0, 0, 0, 0},
        {1, 3, 12, 12, 6, 3, 1, 1, 1, 1, 1, 9, 0, 0, 0, 0},
        {9, 2, 11, 13, 3, 3, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {1, 8, 12, 10, 16, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
        {5, 6, 9, 11, 12, 3, 2, 1, 3, 1, 0, 0, 0, 0, 0, 0},
        {33, 2, 4, 4, 3, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        // the thread count changes between reserving the workspace and running
        {6, 2, 16, 16, 4, 3, 1, 1, 1, 1, 1, 6, 1, 2, 0, 0},
        {6, 2, 16, 16, 4, 3, 1, 1, 1, 1, 1, 6, 2, 1, 0, 0},
        {6, 2, 16, 16, 4, 3, 1, 1, 1, 1, 1, 6, 1, 3, 0, 0},
        // stride 1, >= 16 channels, >= 400 output pixels: the shifted-GEMM forward (no
        // im2col), with pads 0..2, 3x3 and 5x5, non-square, a batch of several images on
        // several threads, and a thread count that changes after reserving
        {3, 16, 20, 22, 8, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {2, 16, 21, 20, 5, 5, 1, 2, 1, 0, 0, 0, 0, 0, 0, 0},
        {2, 17, 24, 23, 6, 3, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0},
        {1, 16, 24, 26, 7, 5, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {5, 16, 20, 20, 4, 3, 1, 1, 1, 1, 1, 6, 1, 2, 0, 0},
        {4, 20, 20, 21, 3, 3, 1, 1, 1, 0, 1, 4, 2, 1, 0, 0},
        // stride 1, 3x3 or 5x5, >= 36 Winograd tiles: the forward (>= 16 input channels)
        // and the input gradient (>= 16 output channels) by Winograd, with pads 0..2,
        // ragged edge tiles, one input channel, several threads
        {2, 1, 24, 24, 16, 5, 1, 2, 1, 1, 1, 0, 0, 0, 0, 0},
        {2, 4, 26, 25, 16, 3, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
        {3, 16, 25, 23, 17, 3, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0},
        {3, 18, 23, 26, 16, 5, 1, 1, 1, 1, 0, 4, 1, 2, 0, 0},
        {1, 32, 27, 24, 20, 5, 1, 2, 1, 0, 1, 0, 0, 0, 0, 0},
        // Winograd on chunks of two images (5x5 on 12x12: 36 tiles an image, 144 pixels),
        // and small planes, which keep im2col (fewer than 36 tiles an image)
        {5, 16, 12, 12, 16, 5, 1, 2, 1, 1, 1, 0, 0, 0, 0, 0},
        {20, 16, 12, 12, 16, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
        {9, 16, 6, 6, 18, 3, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0},
        {3, 16, 6, 6, 16, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
        {5, 16, 7, 5, 17, 5, 1, 2, 1, 1, 1, 8, 2, 1, 0, 0},
    };
    int nchunked = (int)(sizeof chunked / sizeof chunked[0]);
    for (int i = 0; i < nchunked; i++) check_conv(&chunked[i], rng);
    return 2 * 2 * 2 * 7 * 3 + nchunked;
}

int main(void) {
    Rng rng;
    rng_seed(&rng, 42);
    int want = run_grid(&rng);
    double worst32 = worst_all;
    if (emo_bf16_available()) {
        emo_set_bf16(1);
        TOL = 1e-2;
        worst_all = 0;
        want += run_grid(&rng);
        printf("bfloat16 (%s): worst error %.2e of scale (tolerance %.0e)\n", emo_bf16_unit(),
               worst_all, TOL);
        emo_set_bf16(0);
        TOL = 1e-5;
        worst_all = worst32;
    } else {
        printf("neither AMX-BF16 nor AVX512-BF16 on this CPU: the bfloat16 pass is skipped\n");
    }

    // the exported helpers, including pads and strides that conv layers do not allow
    for (int n = 1; n <= 2; n++)
        for (int k = 1; k <= 5; k += 2)
            for (int stride = 1; stride <= 3; stride++)
                for (int pad = 0; pad <= 2; pad++) {
                    check_im2col(n, 3, 6, 5, k, stride, pad, &rng);
                    check_im2col(n, 2, 5, 8, k, stride, pad, &rng);
                }
    printf("%d conv layers and %d im2col/col2im shapes against the direct loops; worst error "
           "%.2e of scale (tolerance %.0e)\n",
           nets_checked, im2col_checked, worst_all, TOL);
    CHECK(nets_checked == want, "only %d conv layers checked, want %d", nets_checked, want);
    return test_result("test_conv_naive");
}
