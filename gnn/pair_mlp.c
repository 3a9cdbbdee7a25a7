/* The exact ranking's tile, p0 and the MLP's hidden layers (Eq. 15) fused.

   pair_input.c writes p0 for a whole tile (8k pairs x 192 values: 6 MB in
   float32), which leaves the caches before the first layer's GEMM reads it
   back. Here each thread builds p0 for BLOCK pairs at a time into its own
   buffer (36 kB: it stays in L1/L2), multiplies it through every hidden
   layer there, and writes only the last hidden activation to `out`, or,
   for bfloat16 layers, each pair's logit (block_logits); float32's logit
   layer (one output column) stays in torch.

   The products sum in the order oneDNN's and MKL's CPU GEMMs do at these
   shapes, so the results are theirs to the bit (native.py checks that on
   random data before it uses this loop, else the tile takes the torch ops):
   - float32: acc = 0, then acc = fma(x[k], w[k][j], acc) for k = 0..K-1,
     then acc + bias, then ReLU;
   - bfloat16: VDPBF16PS over the pairs of k (odd k, then even, each add
     rounded to float), then + bias in float, ReLU, rounded to bfloat16;
     on a CPU with AMX, where oneDNN sums otherwise, TDPBF16PS as oneDNN
     does there (native_mlp.py compares bfloat16 by `matches`).
   p0 is always built in float32 (pair_body's float32 path); for bfloat16
   layers it is rounded once, as torch's `.to(torch.bfloat16)` rounds: closer
   to float32 than p0 built in bfloat16 op by op, and faster, as its input
   costs no per-op rounding.
   With AVX-512 (and AVX512-BF16 for bfloat16) a 6-row x 64-column register
   tile, or AMX tiles (layer_amx); elsewhere the same sums as plain loops. */
#include "pair_body.h"

#include <stdlib.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__) && defined(__linux__)
#define V2HT_AMX 1
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define BLOCK 48 /* pairs a thread builds and multiplies at once; a multiple of 48 */
#define V2HT_MAX_LAYERS 4

/* One hidden layer: out = relu(in @ w + bias), in of width k, out of width n.
   w float32: (k, n) row-major; bfloat16: (k / 2, n, 2), the pairs of k
   adjacent, as VDPBF16PS reads them. bias: n floats, or NULL. */
typedef struct {
    int64_t k, n;
    const void *w;
    const float *bias;
} v2ht_layer;

static inline float relu_f(float x) { return x > 0.0f ? x : x * 0.0f; }

/* Columns in blocks of 64 (16 nv floats), rows in groups of 24 (BLOCK is a
   multiple), each through TILE's register tile with about 24 accumulators
   whatever the width: the FMAs, not the broadcasts of x, set the pace.
   Uses x, rows, ly, n and y of the calling layer function. */
#define REGISTER_TILES(TILE)                                              \
    for (int64_t j0 = 0; j0 < n; j0 += 64) {                              \
        const int64_t nv = (n - j0) >= 64 ? 4 : (n - j0) / 16;            \
        for (int64_t r0 = 0; r0 < rows; r0 += 24) {                       \
            if (nv == 4)                                                  \
                for (int64_t r = r0; r < r0 + 24; r += 6)                 \
                    TILE(x, r, ly, j0, 6, 4, y);                          \
            else if (nv == 3)                                             \
                for (int64_t r = r0; r < r0 + 24; r += 8)                 \
                    TILE(x, r, ly, j0, 8, 3, y);                          \
            else if (nv == 2)                                             \
                for (int64_t r = r0; r < r0 + 24; r += 12)                \
                    TILE(x, r, ly, j0, 12, 2, y);                         \
            else                                                          \
                TILE(x, r0, ly, j0, 24, 1, y);                            \
        }                                                                 \
    }

#if defined(__AVX512F__)
/* x > 0 ? x : x * 0, oneDNN's ReLU (NaN stays NaN), after + bias */
static inline __m512 bias_relu(__m512 s, const float *bias)
{
    const __m512 zero = _mm512_setzero_ps();
    if (bias)
        s = _mm512_add_ps(s, _mm512_loadu_ps(bias));
    return _mm512_mask_mov_ps(_mm512_mul_ps(s, zero), _mm512_cmp_ps_mask(s, zero, _CMP_GT_OQ), s);
}

/* Rows r0..r0+mr, columns j0..j0+16 nv: mr x nv accumulators in registers. */
static inline __attribute__((always_inline)) void tile_f32(const float *x, int64_t r0, const v2ht_layer *ly,
                                                            int64_t j0, const int mr, const int nv, float *y)
{
    const int64_t k = ly->k, n = ly->n;
    const float *w = ly->w;
    __m512 acc[24][4];
    for (int r = 0; r < mr; ++r)
        for (int v = 0; v < nv; ++v)
            acc[r][v] = _mm512_setzero_ps();
    const float *xr = x + r0 * k;
    for (int64_t kk = 0; kk < k; ++kk) {
        __m512 wv[4];
        for (int v = 0; v < nv; ++v)
            wv[v] = _mm512_loadu_ps(w + kk * n + j0 + 16 * v);
        for (int r = 0; r < mr; ++r) {
            const __m512 xb = _mm512_set1_ps(xr[r * k + kk]);
            for (int v = 0; v < nv; ++v)
                acc[r][v] = _mm512_fmadd_ps(xb, wv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < mr; ++r)
        for (int v = 0; v < nv; ++v)
            _mm512_storeu_ps(y + (r0 + r) * n + j0 + 16 * v, bias_relu(acc[r][v], ly->bias ? ly->bias + j0 + 16 * v : 0));
}
#endif

/* rows x n of relu(x @ w + bias), float32, x rows of stride k; rows a
   multiple of 24. */
static void layer_f32(const float *x, int64_t rows, const v2ht_layer *ly, float *y)
{
    const int64_t k = ly->k, n = ly->n;
    const float *w = ly->w;
#if defined(__AVX512F__)
    if (n % 16 == 0) {
        REGISTER_TILES(tile_f32);
        return;
    }
#endif
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < n; ++j) {
            float acc = 0.0f;
            for (int64_t kk = 0; kk < k; ++kk)
                acc = __builtin_fmaf(x[r * k + kk], w[kk * n + j], acc);
            y[r * n + j] = relu_f(ly->bias ? acc + ly->bias[j] : acc);
        }
}


#if defined(__AVX512BF16__)
static inline __attribute__((always_inline)) void tile_bf16(const uint16_t *x, int64_t r0, const v2ht_layer *ly,
                                                             int64_t j0, const int mr, const int nv, uint16_t *y)
{
    const int64_t k = ly->k, n = ly->n;
    const uint16_t *w = ly->w;
    __m512 acc[24][4];
    for (int r = 0; r < mr; ++r)
        for (int v = 0; v < nv; ++v)
            acc[r][v] = _mm512_setzero_ps();
    const uint16_t *xr = x + r0 * k;
    for (int64_t kp = 0; kp < k / 2; ++kp) {
        __m512bh wv[4];
        for (int v = 0; v < nv; ++v)
            wv[v] = (__m512bh)_mm512_loadu_si512(w + (kp * n + j0 + 16 * v) * 2);
        for (int r = 0; r < mr; ++r) {
            uint32_t pair; /* x[2 kp] in the low half: VDPBF16PS adds the high product first */
            memcpy(&pair, xr + r * k + 2 * kp, sizeof pair);
            const __m512bh xb = (__m512bh)_mm512_set1_epi32((int)pair);
            for (int v = 0; v < nv; ++v)
                acc[r][v] = _mm512_dpbf16_ps(acc[r][v], xb, wv[v]);
        }
    }
    for (int r = 0; r < mr; ++r)
        for (int v = 0; v < nv; ++v)
            _mm256_storeu_si256((__m256i *)(y + (r0 + r) * n + j0 + 16 * v),
                                f2bf16(bias_relu(acc[r][v], ly->bias ? ly->bias + j0 + 16 * v : 0)));
}
#endif

/* The same in bfloat16 (x, w and y bfloat16; sums in float). */
static void layer_bf16(const uint16_t *x, int64_t rows, const v2ht_layer *ly, uint16_t *y)
{
    const int64_t k = ly->k, n = ly->n;
    const uint16_t *w = ly->w;
#if defined(__AVX512BF16__)
    if (n % 16 == 0) {
        REGISTER_TILES(tile_bf16);
        return;
    }
#endif
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < n; ++j) {
            float acc = 0.0f;
            for (int64_t kk = 0; kk + 1 < k; kk += 2) {
                acc = acc + bf2f(x[r * k + kk + 1]) * bf2f(w[(kk / 2 * n + j) * 2 + 1]);
                acc = acc + bf2f(x[r * k + kk]) * bf2f(w[(kk / 2 * n + j) * 2]);
            }
            y[r * n + j] = f2bf(relu_f(ly->bias ? acc + ly->bias[j] : acc));
        }
}

#if defined(V2HT_AMX)
/* The bfloat16 layers on AMX tiles, where the CPU has them: oneDNN's own
   bfloat16 GEMMs run there, and TDPBF16PS is 16 rows x 16 columns x 32
   products an instruction, against VDPBF16PS's 16 x 2. The weights' 32 x 16
   slices load as they are (pair_mlp's bfloat16 layout, pairs of k adjacent,
   is AMX's B layout). The sums run over k in slices of 32, ascending, as
   oneDNN's kernels run them: the same bits as its GEMMs (tests). */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

typedef struct {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

static int amx_state; /* 0 not asked, 1 granted, -1 refused */

/* The kernel lends a process the tile registers' state only when asked
   (Linux >= 5.16): once per process, before any thread touches a tile. */
static int amx_granted(void)
{
    if (amx_state == 0)
        amx_state = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 1 : -1;
    return amx_state == 1;
}

static void amx_configure(void)
{
    amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; ++t) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
}

/* Does a layer fit the tiles: k in slices of 32, n in pairs of 16 columns? */
static int amx_fits(const v2ht_layer *ly) { return ly->k % 32 == 0 && ly->n % 32 == 0; }

_Static_assert(BLOCK % 16 == 0, "layer_amx takes 16 rows at a time");

/* 16 rows x 32 columns of relu(sums + bias), rounded to bfloat16: `sums`
   holds two 16 x 16 tiles of float sums, side by side in columns; a row's
   32 values take one conversion and one store */
static inline __attribute__((always_inline)) void amx_epilogue(const float *sums, const float *bias, int64_t n,
                                                               uint16_t *y)
{
    for (int r = 0; r < 16; ++r) {
        const __m512 lo = bias_relu(_mm512_loadu_ps(sums + 16 * r), bias);
        const __m512 hi = bias_relu(_mm512_loadu_ps(sums + 256 + 16 * r), bias ? bias + 16 : 0);
        store32_bf16(y + r * n, lo, hi);
    }
}

/* BLOCK rows of relu(x @ w + bias) rounded to bfloat16, n a multiple of
   32; `sums` holds 512 floats. Each 16 rows x 32 columns as 1 x 2 tiles:
   tiles 0-1 the sums, 4 the rows' inputs, 6-7 the weights. */
static void layer_amx(const uint16_t *x, const v2ht_layer *ly, uint16_t *y, float *sums)
{
    const int64_t k = ly->k, n = ly->n;
    const uint16_t *w = ly->w;
    for (int64_t j0 = 0; j0 < n; j0 += 32) {
        const float *bias = ly->bias ? ly->bias + j0 : 0;
        for (int64_t r0 = 0; r0 < BLOCK; r0 += 16) {
            _tile_zero(0);
            _tile_zero(1);
            for (int64_t k0 = 0; k0 < k; k0 += 32) {
                _tile_loadd(6, w + (k0 / 2 * n + j0) * 2, n * 4);
                _tile_loadd(7, w + (k0 / 2 * n + j0 + 16) * 2, n * 4);
                _tile_loadd(4, x + r0 * k + k0, k * 2);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
            }
            _tile_stored(0, sums, 64);
            _tile_stored(1, sums + 256, 64);
            amx_epilogue(sums, bias, n, y + r0 * n + j0);
        }
    }
}
#endif

#if defined(__AVX512BF16__)
/* 16 x 16 32-bit values transposed in registers: r[i] lane c becomes r[c]
   lane i. Unpacks within 128-bit blocks, then whole blocks moved. */
static inline __attribute__((always_inline)) void transpose16(__m512i *r)
{
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* u[i + c], block b: column 4 b + c of rows i..i+3 */
        u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int c = 0; c < 4; ++c) {
        const __m512i a0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44), a1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
        const __m512i b0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44),
                      b1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_i32x4(a0, b0, 0x88);
        r[4 + c] = _mm512_shuffle_i32x4(a0, b0, 0xDD);
        r[8 + c] = _mm512_shuffle_i32x4(a1, b1, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(a1, b1, 0xDD);
    }
}

/* bf2f(f2bf(x)) on 16 floats */
static inline __m512 round_to_bf16(__m512 x)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(f2bf16(x)), 16));
}

/* The logit layer (Eq. 16) for bfloat16 hidden activations h (rows x k,
   k even): as torch computes `h @ w` in bfloat16, then `+ bias`, then
   `.float()`. The sum runs as oneDNN's product of one column runs it (found
   by search on 4M random rows: no row differs): each row in one float
   lane, over the pairs of k ascending, VDPBF16PS's order within a pair
   (odd k, then even); rounded to bfloat16, plus the bias in float, rounded
   again. Sixteen rows at a time, one a lane: their pairs of k, sixteen at a
   time, transposed in registers (a gather a pair of k made this layer
   four times slower: 14 against 3.5 ns a pair on a Zen 5 core). `lw`: k weights, then the bias when `biased`. */
static void block_logits(const uint16_t *h, int64_t rows, int64_t k, const uint16_t *lw, int biased,
                         int64_t p, int64_t j, int64_t n, int64_t stride, float *out)
{
    /* row r is pair (p, j) counted on from the block's first: its logit goes
       to out[p * stride + j] (the full rank's columns, written in place) */
    const __m512 b = _mm512_set1_ps(biased ? bf2f(lw[k]) : 0.0f);
    const int64_t kp_all = k / 2;
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        const int64_t nr = rows - r0 < 16 ? rows - r0 : 16;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t c0 = 0; c0 < kp_all; c0 += 16) {
            const int64_t nc = kp_all - c0 < 16 ? kp_all - c0 : 16;
            const __mmask16 cols = (__mmask16)((1u << nc) - 1u);
            __m512i x[16];
            for (int r = 0; r < 16; ++r)
                x[r] = r < nr ? _mm512_maskz_loadu_epi32(cols, h + (r0 + r) * k + 2 * c0) : _mm512_setzero_si512();
            transpose16(x);
            for (int64_t c = 0; c < nc; ++c) {
                uint32_t pair;
                memcpy(&pair, lw + 2 * (c0 + c), sizeof pair);
                acc = _mm512_dpbf16_ps(acc, (__m512bh)x[c], (__m512bh)_mm512_set1_epi32((int)pair));
            }
        }
        __m512 l = round_to_bf16(acc);
        if (biased)
            l = round_to_bf16(_mm512_add_ps(l, b));
        if (j + nr < n) { /* the rows stay inside post p's columns */
            _mm512_mask_storeu_ps(out + p * stride + j, (__mmask16)((1u << nr) - 1u), l);
            j += nr;
        } else {
            float ls[16];
            _mm512_storeu_ps(ls, l);
            for (int64_t r = 0; r < nr; ++r) {
                out[p * stride + j] = ls[r];
                if (++j == n) {
                    j = 0;
                    ++p;
                }
            }
        }
    }
}
#endif

static inline __attribute__((always_inline)) void block_input(
    int64_t q0, int64_t rows, int64_t n, int64_t n_mod, const int64_t d, const v2ht_modality *mods,
    const float *e_h, int64_t eh_post_stride, const float *e_u, float *p0, uint16_t *bf)
{
    /* bf: p0 rounded to bfloat16 there, written so where pair_body's vector
       path runs (else built in float32 and rounded after). Every pair's
       lookups first (post and hashtag counted on, not divided out), then
       the vectors: the lookups' loads and divisions overlap. */
    const int64_t k = n_mod * d;
    const float *y[BLOCK][V2HT_MAX_MODALITIES];
    float lam[BLOCK][V2HT_MAX_MODALITIES];
    int64_t ps[BLOCK], js[BLOCK];
    int64_t p = q0 / n, j = q0 % n;
    for (int64_t r = 0; r < rows; ++r) {
        ps[r] = p;
        js[r] = j;
        pair_lookup(p, j, q0 + r, n_mod, d, mods, y[r], lam[r]);
        if (++j == n) {
            j = 0;
            ++p;
        }
    }
    for (int64_t r = 0; r < rows; ++r)
        if (!pair_write(ps[r], js[r], n_mod, d, y[r], lam[r], e_h, eh_post_stride, e_u, p0, r * k, bf ? bf + r * k : 0) && bf)
            round_bf16(p0 + r * k, k, bf + r * k);
}

/* n floats to bfloat16 as torch's .to(torch.bfloat16) rounds them */
/* `out` (pairs, layers[n_layers - 1].n): the last hidden layer's activation
   for every pair, in the layers' element type (bf16: 0 float32, 1
   bfloat16); the tables, e_h and e_u are float32 either way. With
   `logit` (bfloat16 layers only: the last width's weights, then the bias
   when logit_mode is 2; logit_mode 1: no bias) `out` gets each pair's
   logit instead, as float32 (block_logits), post p's row out_stride
   floats after post p - 1's (n where out is contiguous).
   Returns 0, -1 (nothing written) for shapes it does not take, -2 when a
   thread's buffers could not be allocated (out then incomplete). */
int v2ht_pair_mlp(int64_t bf16, int64_t pairs, int64_t threads, int64_t n, int64_t n_mod, int64_t d,
                  const v2ht_modality *mods, const float *e_h, int64_t eh_post_stride, const float *e_u,
                  int64_t n_layers, const v2ht_layer *layers, const uint16_t *logit, int64_t logit_mode,
                  int64_t out_stride, void *out)
{
    if (n_mod > V2HT_MAX_MODALITIES || n_layers < 1 || n_layers > V2HT_MAX_LAYERS || layers[0].k != n_mod * d)
        return -1;
#if !defined(__AVX512BF16__)
    if (logit_mode)
        return -1;
#endif
    if (logit_mode && (!bf16 || !logit || layers[n_layers - 1].n % 2))
        return -1;
    int64_t widest = layers[0].k;
    for (int64_t i = 0; i < n_layers; ++i) {
        if ((i > 0 && layers[i].k != layers[i - 1].n) || layers[i].n < 1 || (bf16 && layers[i].k % 2))
            return -1;
        widest = layers[i].n > widest ? layers[i].n : widest;
    }
    const int64_t es = bf16 ? 2 : 4, width = layers[n_layers - 1].n;
    const int64_t blocks = (pairs + BLOCK - 1) / BLOCK;
    int failed = 0, tiles = 0;
#if defined(V2HT_AMX)
    tiles = bf16 && amx_granted();
    for (int64_t i = 0; tiles && i < n_layers; ++i)
        tiles = amx_fits(layers + i);
#endif
    (void)tiles; /* without AMX: never set */
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        /* two ping-pong buffers of BLOCK rows, zeroed so the rows past the
           last pair (computed, never stored) hold no NaN from the heap; then
           p0 in float32 for bfloat16 layers, and AMX's sums */
        char *buf = calloc(2 * BLOCK * widest * es + (bf16 ? BLOCK * layers[0].k * 4 + 6 * 256 * 4 : 0), 1);
        float *p0f = bf16 && buf ? (float *)(buf + 2 * BLOCK * widest * es) : 0;
        if (!buf) {
#pragma omp atomic write
            failed = 1;
        }
#if defined(V2HT_AMX)
        if (tiles)
            amx_configure(); /* each thread's own tile state */
#endif
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < blocks; ++blk) {
            if (!buf)
                continue;
            const int64_t q0 = blk * BLOCK, rows = pairs - q0 < BLOCK ? pairs - q0 : BLOCK;
            char *in = buf, *nxt = buf + BLOCK * widest * es;
            float *p0 = bf16 ? p0f : (float *)in;
            /* rows past the last pair keep zeros or an earlier block's values:
               computed, never stored */
            uint16_t *bf = bf16 ? (uint16_t *)in : 0;
            if (d == 64)
                block_input(q0, rows, n, n_mod, 64, mods, e_h, eh_post_stride, e_u, p0, bf);
            else
                block_input(q0, rows, n, n_mod, d, mods, e_h, eh_post_stride, e_u, p0, bf);
            for (int64_t i = 0; i < n_layers; ++i) {
#if defined(V2HT_AMX)
                if (tiles)
                    layer_amx((const uint16_t *)in, layers + i, (uint16_t *)nxt, p0f + BLOCK * layers[0].k);
                else
#endif
                if (bf16)
                    layer_bf16((const uint16_t *)in, BLOCK, layers + i, (uint16_t *)nxt);
                else
                    layer_f32((const float *)in, BLOCK, layers + i, (float *)nxt);
                char *t = in;
                in = nxt;
                nxt = t;
            }
#if defined(__AVX512BF16__)
            if (logit_mode)
                block_logits((const uint16_t *)in, rows, width, logit, logit_mode == 2, q0 / n, q0 % n, n, out_stride,
                             (float *)out);
            else
#endif
            memcpy((char *)out + q0 * width * es, in, rows * width * es);
        }
#if defined(V2HT_AMX)
        if (tiles)
            _tile_release();
#endif
        free(buf);
    }
    return failed ? -2 : 0;
}

/* 1 where bfloat16 layers run on AMX tiles (those whose widths amx_fits):
   built for them, and the kernel lends this process their state. */
int v2ht_pair_mlp_amx(void)
{
#if defined(V2HT_AMX)
    return amx_granted();
#else
    return 0;
#endif
}

/* 1 where this build has the register tiles for the layers' element type
   (bf16: 0 float32, 1 bfloat16), else 0: the plain loops alone are slower than
   torch's GEMMs, so native_mlp.py then leaves the tile to them. */
int v2ht_pair_mlp_vectors(int64_t bf16)
{
#if defined(__AVX512BF16__)
    return 1;
#elif defined(__AVX512F__)
    return bf16 ? 0 : 1;
#else
    (void)bf16;
    return 0;
#endif
}
