// gemm.c: the engine's matrix product. float32 through OpenBLAS by default; in bfloat16 mode
// (emo_set_bf16) the products round both operands to bfloat16 and multiply them, accumulating
// in float32, on the AMX tile unit of recent Xeons (Sapphire Rapids and later) or, where there
// is none, with AVX512-BF16's VDPBF16PS (Cooper Lake, AMD Zen 4 and later).
//
// AMX holds eight 1 KB tile registers. Here tiles 0-3 accumulate a 32x32 block of C (four
// 16x16 float32 tiles), 4-5 hold two 16x32 bfloat16 strips of A, 6-7 two 32x16 strips of B in
// the "VNNI" order the instruction wants (row p holds, for each of 16 columns, the pair of
// k = 2p, 2p+1). TDPBF16PS then does 16x16x32 multiply-adds per instruction.
//
// Without AMX the same packed tiles feed a register kernel: for each pair p of a k-tile, one
// 64-byte row of each B tile (16 columns x the pair) is multiplied by the broadcast pair of
// each of 8 rows of A, 16 float32 accumulators at a time (VDPBF16PS: 16 lanes x 2 products).
//
// Blocking follows GotoBLAS: for each KC x NC block of B (packed once, kept in L2), each 32-row
// strip of A is packed (kept in L1) and swept across the block's columns; when B has several
// column blocks, A's KC block is packed once for all of them. Packing converts to bfloat16 with
// round-to-nearest-even (VCVTNE2PS2BF16) and pads every block with zeros to whole tiles, so
// edges need no special kernel; only the C blocks that stick out of C go through a 32x32
// scratch block. Operands are read through row pointers (RowMap, layer.h), so a convolution's
// lowered matrix can be packed straight from its padded planes, without im2col.
#define _DEFAULT_SOURCE   // syscall()
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "layer.h"

#define AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16")))
#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
enum { KC = 512, NC = 256, TILE = 512 };   // KC, NC: multiples of 32; TILE: bf16 per tile

static int g_avail = -1;   // -1: not probed yet, else an EMO_BF16_* unit
static int g_unit;         // the unit in use (emo_bf16_set_unit may pick the slower one)
static int g_on;

// AMX-TILE and AMX-BF16 in CPUID, the tile state enabled by the OS (XCR0 bits 17-18), and
// Linux's per-process permission to use it (arch_prctl ARCH_REQ_XCOMP_PERM, kernel >= 5.16).
static int amx_probe(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid(1, a, b, c, d);
    if (!(c & (1u << 27))) return 0;   // OSXSAVE
    __cpuid_count(7, 0, a, b, c, d);
    if (!(d & (1u << 24)) || !(d & (1u << 22))) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return 0;
#ifdef SYS_arch_prctl
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
#else
    return 0;
#endif
}

int emo_zmm_enabled(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid(1, a, b, c, d);
    if (!(c & (1u << 27))) return 0;   // OSXSAVE
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xe6) == 0xe6;
}

// AVX512-F, -BW and -BF16 in CPUID, and the zmm state enabled by the OS.
static int avx512bf16_probe(void) {
    unsigned a, b, c, d;
    if (!emo_zmm_enabled()) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & (1u << 16)) || !(b & (1u << 30)) || a < 1) return 0;   // AVX512F, AVX512BW
    __cpuid_count(7, 1, a, b, c, d);
    return (a & (1u << 5)) != 0;   // AVX512_BF16
}

int emo_bf16_available(void) {
    if (g_avail < 0) {
        g_avail = sizeof(real) != sizeof(float) ? EMO_BF16_NONE
                  : amx_probe()                 ? EMO_BF16_AMX
                  : avx512bf16_probe()          ? EMO_BF16_AVX512
                                                : EMO_BF16_NONE;
        g_unit = g_avail;
    }
    return g_avail;
}

int emo_bf16_set_unit(int unit) {
    int avail = emo_bf16_available();
    if (unit == avail || (unit == EMO_BF16_AVX512 && avail == EMO_BF16_AMX)) {
        g_unit = unit;   // AMX CPUs have AVX512-BF16 too
        return 0;
    }
    return -1;
}

const char *emo_bf16_unit(void) {
    emo_bf16_available();
    return g_unit == EMO_BF16_AMX ? "amx" : g_unit == EMO_BF16_AVX512 ? "avx512-bf16" : "none";
}

int emo_set_bf16(int on) {
    if (on && !emo_bf16_available()) return -1;
    g_on = on != 0;
    return 0;
}

int emo_bf16(void) { return g_on; }

#ifndef EMOCAM_F64
typedef struct {
    uint8_t palette, start;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} TileCfg;

AMX static void tiles_config(void) {
    _Alignas(64) TileCfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
}

// Each thread's packing buffers, grown as needed and kept.
static _Thread_local uint16_t *t_buf;
static _Thread_local size_t t_cap;

static uint16_t *scratch(size_t n) {
    if (n > t_cap) {
        free(t_buf);
        t_buf = aligned_alloc(64, (n * sizeof(uint16_t) + 63) / 64 * 64);
        t_cap = t_buf ? n : 0;
    }
    return t_buf;
}

static inline __mmask16 mask16(int n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

// 32 floats s[0..n) (zeros past n) as 32 bfloat16, in order: 16 pairs (2p, 2p+1) as dwords.
AMX static inline __m512i pairs_row(const float *s, int n) {
    __m512 lo = _mm512_maskz_loadu_ps(mask16(n), s);
    __m512 hi = _mm512_maskz_loadu_ps(mask16(n - 16), s + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

// Rows r0 and r1 (16 floats each, zeros past n; r1 NULL: zeros) interleaved into 16 dwords
// (r0[j], r1[j]).
AMX static inline __m512i pairs_cols(const float *r0, const float *r1, int n) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                         8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __m512 a = _mm512_maskz_loadu_ps(mask16(n), r0);
    __m512 b = r1 ? _mm512_maskz_loadu_ps(mask16(n), r1) : _mm512_setzero_ps();
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

static inline void transpose16(const uint32_t *s, uint32_t *d) {
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) d[j * 16 + i] = s[i * 16 + j];
}

// One 1 KB tile of a matrix given by its stored rows (each contiguous), from the row
// pointers rp (NULL: a row of zeros) at position at: either (k_contig) 16 rows of 32 k each,
// rp[0..16) + at + [0, 32), or 32 k-rows of 16 each, rp[0..32) + at + [0, 16); nv of them
// valid (zeros past). The tile holds either [r][pair] (an A tile) or [pair][r] (a B tile).
AMX static void pack_tile(const float *const *rp, size_t at, int k_contig, int nv, int b_tile,
                          uint16_t *t) {
    _Alignas(64) uint32_t tmp[256];
    uint32_t *dst = b_tile == k_contig ? tmp : (uint32_t *)t;
    if (k_contig) {   // dst[r][p]
        for (int i = 0; i < 16; i++)
            _mm512_store_si512(dst + i * 16, rp[i] ? pairs_row(rp[i] + at, nv)
                                                   : _mm512_setzero_si512());
    } else {   // dst[p][r]
        for (int p = 0; p < 16; p++) {
            const float *r0 = rp[2 * p], *r1 = rp[2 * p + 1];
            _mm512_store_si512(dst + p * 16, r0 ? pairs_cols(r0 + at, r1 ? r1 + at : NULL, nv)
                                                : _mm512_setzero_si512());
        }
    }
    if (dst == tmp) transpose16(tmp, (uint32_t *)t);
}

// Pack rows [r0, r0 + 16*nrt) x k [k0, k0 + kc) of op(X) (rows x kmax) as nrt x (kc/32) tiles,
// row-tile-major. op(X)(r, k) is X's row r at k (k_contig) or its row k at r. The row
// pointers are worked out once per strip of tiles that shares them.
AMX static void pack(RowMap x, int k_contig, int rows, int r0, int nrt, int kmax, int k0, int kc,
                     int b_tile, uint16_t *out) {
    int nkt = (kc + 31) / 32;
    const float *rp[32];
    if (k_contig) {   // a strip of 16 rows r, along k
        for (int rt = 0; rt < nrt; rt++) {
            int r = r0 + rt * 16;
            for (int i = 0; i < 16; i++) rp[i] = r + i < rows ? rowmap_row(x, r + i) : NULL;
            for (int kt = 0; kt < nkt; kt++)
                pack_tile(rp, (size_t)k0 + kt * 32, 1, kmax - k0 - kt * 32, b_tile,
                          out + ((size_t)rt * nkt + kt) * TILE);
        }
    } else {   // a strip of 32 rows k, along r
        for (int kt = 0; kt < nkt; kt++) {
            int k = k0 + kt * 32;
            for (int i = 0; i < 32; i++) rp[i] = k + i < kmax ? rowmap_row(x, k + i) : NULL;
            for (int rt = 0; rt < nrt; rt++)
                pack_tile(rp, (size_t)r0 + rt * 16, 0, rows - r0 - rt * 16, b_tile,
                          out + ((size_t)rt * nkt + kt) * TILE);
        }
    }
}

// C[32x32 at c, row stride ldc floats] (+)= A strip (2 row tiles) . B strip (2 column tiles).
AMX static void kernel(const uint16_t *a, const uint16_t *b, int nkt, float *c, int ldc,
                       int accumulate) {
    size_t s = (size_t)ldc * sizeof(float);
    if (accumulate) {
        _tile_loadd(0, c, s);
        _tile_loadd(1, c + 16, s);
        _tile_loadd(2, c + (size_t)16 * ldc, s);
        _tile_loadd(3, c + (size_t)16 * ldc + 16, s);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    const uint16_t *a1 = a + (size_t)nkt * TILE, *b1 = b + (size_t)nkt * TILE;
    for (int kt = 0; kt < nkt; kt++) {
        _tile_loadd(4, a + (size_t)kt * TILE, 64);
        _tile_loadd(6, b + (size_t)kt * TILE, 64);
        _tile_loadd(5, a1 + (size_t)kt * TILE, 64);
        _tile_loadd(7, b1 + (size_t)kt * TILE, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, s);
    _tile_stored(1, c + 16, s);
    _tile_stored(2, c + (size_t)16 * ldc, s);
    _tile_stored(3, c + (size_t)16 * ldc + 16, s);
}

// The same product without AMX: 8 rows of C at a time in 16 registers (two 16-column halves),
// for each pair p of each k-tile the pair of each row broadcast against a row of each B tile.
AVX512BF16 static void kernel_avx512(const uint16_t *a, const uint16_t *b, int nkt, float *c,
                                     int ldc, int accumulate) {
    const uint32_t *A = (const uint32_t *)a, *B = (const uint32_t *)b;
    const uint32_t *b1 = B + (size_t)nkt * (TILE / 2);
    for (int r0 = 0; r0 < 32; r0 += 8) {
        __m512 acc[8][2];
        float *cr = c + (size_t)r0 * ldc;
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            acc[i][0] = accumulate ? _mm512_loadu_ps(cr + (size_t)i * ldc) : _mm512_setzero_ps();
            acc[i][1] = accumulate ? _mm512_loadu_ps(cr + (size_t)i * ldc + 16)
                                   : _mm512_setzero_ps();
        }
        // row r0 + i, pair p of k-tile kt: A tile (r0 / 16, kt), dword (r0 % 16 + i) * 16 + p
        const uint32_t *ar = A + (size_t)(r0 / 16) * nkt * (TILE / 2) + (r0 % 16) * 16;
        for (int kt = 0; kt < nkt; kt++) {
            const uint32_t *at = ar + (size_t)kt * (TILE / 2), *bt0 = B + (size_t)kt * (TILE / 2);
            const uint32_t *bt1 = b1 + (size_t)kt * (TILE / 2);
            for (int p = 0; p < 16; p++) {
                __m512bh v0 = (__m512bh)_mm512_load_si512(bt0 + p * 16);
                __m512bh v1 = (__m512bh)_mm512_load_si512(bt1 + p * 16);
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) {
                    __m512bh u = (__m512bh)_mm512_set1_epi32((int)at[i * 16 + p]);
                    acc[i][0] = _mm512_dpbf16_ps(acc[i][0], u, v0);
                    acc[i][1] = _mm512_dpbf16_ps(acc[i][1], u, v1);
                }
            }
        }
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            _mm512_storeu_ps(cr + (size_t)i * ldc, acc[i][0]);
            _mm512_storeu_ps(cr + (size_t)i * ldc + 16, acc[i][1]);
        }
    }
}

// The same for a last, odd 16-column tile of B (C 32 x 16): 16 rows at a time, one register
// each, so that a product 16 columns past a multiple of 32 (72 columns: a 6x6 plane, face and
// mirror) computes no 16 columns of zeros.
AVX512BF16 static void kernel_avx512_16(const uint16_t *a, const uint16_t *b, int nkt, float *c,
                                        int ldc, int accumulate) {
    const uint32_t *A = (const uint32_t *)a, *B = (const uint32_t *)b;
    for (int rt = 0; rt < 2; rt++) {
        __m512 acc[16];
        float *cr = c + (size_t)rt * 16 * ldc;
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            acc[i] = accumulate ? _mm512_loadu_ps(cr + (size_t)i * ldc) : _mm512_setzero_ps();
        const uint32_t *ar = A + (size_t)rt * nkt * (TILE / 2);
        for (int kt = 0; kt < nkt; kt++) {
            const uint32_t *at = ar + (size_t)kt * (TILE / 2), *bt = B + (size_t)kt * (TILE / 2);
            for (int p = 0; p < 16; p++) {
                __m512bh v = (__m512bh)_mm512_load_si512(bt + p * 16);
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)_mm512_set1_epi32((int)at[i * 16 + p]),
                                              v);
            }
        }
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) _mm512_storeu_ps(cr + (size_t)i * ldc, acc[i]);
    }
}

// A packed once (emo_pack_a): for each KC block of k, for each 32-row strip, its 2 x nkt tiles.
static size_t packed_at(int M, int k0, int m0, int nkt) {
    return ((size_t)(k0 / 32) * ((M + 31) / 32) * 2 + (size_t)(m0 / 32) * 2 * nkt) * TILE;
}

// Without AMX, a product with few columns (a linear layer on a face and its mirror) wastes most
// of the 32-column kernel. C (M x N, N <= GEMV_MAX) = A_packed B^T + beta C instead takes each
// row of A from its tile (16 pairs, 32 k, in one register) against each column of B rounded
// the same way, and sums the 16 lanes at the end: A read once, no padding columns.
enum { GEMV_MAX = 8 };
AVX512BF16 static void gemv_avx512(const uint16_t *apre, int M, int N, int K, const float *B,
                                   int ldb, int beta, float *C, int ldc) {
    _Alignas(64) uint32_t xb[GEMV_MAX][KC / 2];   // B's rows as bfloat16 pairs, one k block
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC, nkt = (kc + 31) / 32;
        for (int j = 0; j < N; j++)
            for (int kt = 0; kt < nkt; kt++)
                _mm512_store_si512(xb[j] + kt * 16,
                                   pairs_row(B + (size_t)j * ldb + k0 + kt * 32, kc - kt * 32));
        for (int m0 = 0; m0 < M; m0 += 32) {
            const uint32_t *strip = (const uint32_t *)(apre + packed_at(M, k0, m0, nkt));
            for (int r = 0; r < 32 && m0 + r < M; r++) {
                const uint32_t *row = strip + ((size_t)(r / 16) * nkt * TILE + (r % 16) * 32) / 2;
                __m512 acc[GEMV_MAX];
                for (int j = 0; j < N; j++) acc[j] = _mm512_setzero_ps();
                for (int kt = 0; kt < nkt; kt++) {
                    __m512bh a = (__m512bh)_mm512_load_si512(row + (size_t)kt * (TILE / 2));
                    for (int j = 0; j < N; j++)
                        acc[j] = _mm512_dpbf16_ps(acc[j], a,
                                                  (__m512bh)_mm512_load_si512(xb[j] + kt * 16));
                }
                float *c = C + (size_t)(m0 + r) * ldc;
                for (int j = 0; j < N; j++)
                    c[j] = (beta || k0 > 0 ? c[j] : 0) + _mm512_reduce_add_ps(acc[j]);
            }
        }
    }
}

// C (M x N, row stride ldc) = op(A) op(B) + beta C, beta 0 or 1, op() as in emo_gemm_rows;
// apre: A packed by emo_pack_a (not transposed).
AMX static void gemm_bf16(int ta, int tb, int M, int N, int K, RowMap A, const uint16_t *apre,
                         RowMap B, int beta, float *C, int ldc) {
    int nc_max = N < NC ? (N + 31) / 32 * 32 : NC, kc_max = K < KC ? (K + 31) / 32 * 32 : KC;
    // with several column blocks, A's k-block is packed once for all of them, else strip by
    // strip (kept in L1)
    int a_whole = !apre && N > NC;
    size_t bsz = (size_t)nc_max * kc_max;
    size_t asz = (size_t)(a_whole ? (M + 31) / 32 * 32 : 32) * kc_max;
    uint16_t *bp = scratch(bsz + asz);
    if (!bp) {   // out of memory for the packing buffers: one column at a time, in float32
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double acc = beta ? C[(size_t)i * ldc + j] : 0;
                for (int k = 0; k < K; k++)
                    acc += (double)(ta ? rowmap_row(A, k)[i] : rowmap_row(A, i)[k]) *
                           (tb ? rowmap_row(B, j)[k] : rowmap_row(B, k)[j]);
                C[(size_t)i * ldc + j] = (float)acc;
            }
        return;
    }
    uint16_t *ap = bp + bsz;
    _Alignas(64) float edge[32 * 32];
    int amx = g_unit == EMO_BF16_AMX;
    void (*kern)(const uint16_t *, const uint16_t *, int, float *, int, int) =
        amx ? kernel : kernel_avx512;
    if (amx) tiles_config();
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC, nkt = (kc + 31) / 32;
        int acc = beta || k0 > 0;
        if (a_whole)
            for (int m0 = 0; m0 < M; m0 += 32)
                pack(A, !ta, M, m0, 2, K, k0, kc, 0, bp + bsz + (size_t)m0 / 32 * 2 * nkt * TILE);
        for (int n0 = 0; n0 < N; n0 += NC) {
            // B's 16-column tiles; on AMX a whole number of pairs
            int nc = N - n0 < NC ? N - n0 : NC, nct = amx ? (nc + 31) / 32 * 2 : (nc + 15) / 16;
            pack(B, tb, N, n0, nct, K, k0, kc, 1, bp);
            for (int m0 = 0; m0 < M; m0 += 32) {
                if (apre) ap = (uint16_t *)apre + packed_at(M, k0, m0, nkt);
                else if (a_whole) ap = bp + bsz + (size_t)m0 / 32 * 2 * nkt * TILE;
                else pack(A, !ta, M, m0, 2, K, k0, kc, 0, ap);
                for (int j = 0; j < nct; j += 2) {
                    int c0 = n0 + j * 16, mr = M - m0 < 32 ? M - m0 : 32, w = j + 1 < nct ? 32 : 16;
                    int nr = N - c0 < w ? N - c0 : w;
                    const uint16_t *bj = bp + (size_t)j * nkt * TILE;
                    float *cb = C + (size_t)m0 * ldc + c0;
                    void (*kj)(const uint16_t *, const uint16_t *, int, float *, int, int) =
                        w == 16 ? kernel_avx512_16 : kern;   // an odd last tile (not on AMX)
                    if (mr == 32 && nr == w) {
                        kj(ap, bj, nkt, cb, ldc, acc);
                        continue;
                    }
                    if (acc) {
                        memset(edge, 0, sizeof edge);
                        for (int r = 0; r < mr; r++)
                            memcpy(edge + r * 32, cb + (size_t)r * ldc, (size_t)nr * sizeof(float));
                    }
                    kj(ap, bj, nkt, edge, 32, acc);
                    for (int r = 0; r < mr; r++)
                        memcpy(cb + (size_t)r * ldc, edge + r * 32, (size_t)nr * sizeof(float));
                }
            }
        }
    }
    if (amx) _tile_release();
}
#endif

void emo_gemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
              real alpha, const real *A, int lda, const real *B, int ldb, real beta, real *C,
              int ldc) {
#ifndef EMOCAM_F64
    // Row-major, alpha 1, beta 0 or 1, and big enough on every side to fill
    // tiles.
    if (g_on && order == CblasRowMajor && alpha == 1 && (beta == 0 || beta == 1) && M >= 16 &&
        N >= 16 && K >= 16) {
        gemm_bf16(ta == CblasTrans, tb == CblasTrans, M, N, K, (RowMap){A, (size_t)lda, 1, NULL},
                 NULL, (RowMap){B, (size_t)ldb, 1, NULL}, beta == 1, C, ldc);
        return;
    }
    cblas_sgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    cblas_dgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

size_t emo_packed_len(int M, int K) { return (size_t)((M + 31) / 32) * 2 * ((K + 31) / 32) * TILE; }

#ifndef EMOCAM_F64
AMX static void pack_a_amx(int M, int K, const float *A, int lda, uint16_t *out) {
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC, nkt = (kc + 31) / 32;
        for (int m0 = 0; m0 < M; m0 += 32)
            pack((RowMap){A, (size_t)lda, 1, NULL}, 1, M, m0, 2, K, k0, kc, 0,
                 out + packed_at(M, k0, m0, nkt));
    }
}
#endif

void emo_pack_a(int M, int K, const real *A, int lda, uint16_t *out) {
#ifndef EMOCAM_F64
    if (emo_bf16_available()) pack_a_amx(M, K, A, lda, out);
#else
    (void)M, (void)K, (void)A, (void)lda, (void)out;
#endif
}

void emo_gemm_packed(const uint16_t *ap, const real *A, int lda, CBLAS_TRANSPOSE tb, int M, int N,
                     int K, const real *B, int ldb, real beta, real *C, int ldc) {
#ifndef EMOCAM_F64
    if (g_on && ap && (beta == 0 || beta == 1) && g_unit == EMO_BF16_AVX512 &&
        tb == CblasTrans && N <= GEMV_MAX) {
        gemv_avx512(ap, M, N, K, B, ldb, beta == 1, C, ldc);
        return;
    }
    if (g_on && ap && (beta == 0 || beta == 1)) {
        gemm_bf16(0, tb == CblasTrans, M, N, K, (RowMap){A, (size_t)lda, 1, NULL}, ap,
                 (RowMap){B, (size_t)ldb, 1, NULL}, beta == 1, C, ldc);
        return;
    }
#else
    (void)ap;
#endif
    emo_gemm(CblasRowMajor, CblasNoTrans, tb, M, N, K, 1, A, lda, B, ldb, beta, C, ldc);
}

void emo_gemm_rows(int ta, int tb, int M, int N, int K, RowMap A, const uint16_t *apre, RowMap B,
                   real beta, real *C, int ldc) {
#ifndef EMOCAM_F64
    if (g_on) {
        gemm_bf16(ta, tb, M, N, K, A, apre, B, beta != 0, C, ldc);
        return;
    }
#endif
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)apre, (void)B, (void)beta;
    (void)C, (void)ldc;
    abort();   // callers check emo_bf16() first
}
