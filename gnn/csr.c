/* Propagation's sparse products, the largest part of a training step at
   INSVIDEO size (3.6M directed edges). First out = S @ x for a CSR matrix S
   with int32 indices and float32 values: Eq. 7's A^ Y and its backward.

   Each output row is sum_k vals[k] * x[col[k], :] over the row's entries in
   storage order, one multiply and one add per term (FMA only in the
   V2HT_FMA build): the order torch.sparse.mm's CPU path sums in here, so
   native.py uses this loop only after a probe finds it bit-identical. What
   it adds over that path is a software prefetch of the x row eight entries
   ahead: the rows are gathered at random, and waiting on them was most of
   the time (13 -> 5.5 ms for one product at INSVIDEO size); and, where x is
   larger than a core's share of cache, passes over blocks of x's columns,
   each row resuming its sums where the pass before stopped (its entries in
   storage order, whatever their columns: the same sums), so that a pass
   gathers from a megabyte of x in L2 instead of all of it in L3 (8.6 -> 6.4
   ms for one product 64 wide at INSVIDEO size on the Intel VM).

   Rows are split over `threads` OpenMP threads (torch's own pool, as in
   pair_input.c). A column index outside 0..n_cols-1 stops the loop with -1
   before it reads outside x; the caller then uses torch. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(V2HT_FMA)
#define MAC(acc, v, x) __builtin_fmaf((v), (x), (acc))
#else
#define MAC(acc, v, x) ((acc) + (v) * (x))
#endif

#define MAX_D 256
#define AHEAD 8

/* Prefetch row col[k + AHEAD] of m (n rows of `width` floats): rows are
   gathered at random, and waiting on them was most of the time. */
static inline __attribute__((always_inline)) void prefetch_ahead(const float *m, const int32_t *col, int32_t k,
                                                                 int32_t end, int64_t n, int64_t width) {
    if (k + AHEAD < end) {
        const uint32_t ca = (uint32_t)col[k + AHEAD];
        if (ca < (uint32_t)n) {
            const char *p = (const char *)(m + (int64_t)ca * width);
            for (int64_t c = 0; c < width * 4; c += 64) __builtin_prefetch(p + c);
        }
    }
}

#ifndef V2HT_BLOCK_BYTES
#define V2HT_BLOCK_BYTES (1 << 20)
#endif

/* The columns of x a pass over the rows gathers from: about a megabyte of x,
   which stays in the core's L2 while every row takes its entries there (x
   whole, 4.5 MB at INSVIDEO size, is gathered from L3 at random). */
static inline int64_t block_cols(int64_t n_cols, int64_t width)
{
    int64_t b = V2HT_BLOCK_BYTES / (width * (int64_t)sizeof(float));
    return b < 1 ? 1 : b > n_cols ? n_cols : b;
}

/* Each row's next entry for the passes (crow's starts), or NULL */
static int32_t *cursors(const int32_t *crow, int64_t n_rows)
{
    int32_t *pos = malloc((size_t)(n_rows > 0 ? n_rows : 1) * sizeof(int32_t));
    if (pos)
        memcpy(pos, crow, (size_t)n_rows * sizeof(int32_t));
    return pos;
}

/* 0 when the passes took every row's entries, -1 when some were left: a
   column index out of range, never read. Frees pos. */
static int finish(int32_t *pos, const int32_t *crow, int64_t n_rows)
{
    int bad = 0;
    for (int64_t r = 0; r < n_rows; r++)
        bad |= pos[r] != crow[r + 1];
    free(pos);
    return bad ? -1 : 0;
}

/* Whether to take x in blocks at all: not where it is at most a few
   megabytes (INSVIDEO's 17,548 x 32 floats, 2.2 MB, ran 7% slower in
   blocks; x 64 wide, 4.5 MB, 26% faster). */
static inline int blocked(int64_t n_cols, int64_t width)
{
    return n_cols * width * (int64_t)sizeof(float) > 3 * (int64_t)V2HT_BLOCK_BYTES;
}

/* The columns of one pass: a block, or all of them */
static inline int64_t pass_cols(int64_t n_cols, int64_t width)
{
    return blocked(n_cols, width) ? block_cols(n_cols, width) : (n_cols > 0 ? n_cols : 1);
}

/* Row r's entries from pos[r] on, in storage order, while their column is
   below hi (the pass's last column + 1), added to its sums: zero on the
   first pass, else the sums the pass before left in out. The same adds in
   the same order as one pass over the row. D is a compile-time width for
   the common cases, else d. */
#define ROW(D)                                                                        \
    do {                                                                              \
        float acc[MAX_D];                                                             \
        if (first) for (int64_t j = 0; j < (D); j++) acc[j] = 0.0f;                   \
        else memcpy(acc, out + r * (D), (size_t)(D) * sizeof(float));                 \
        const int32_t end = crow[r + 1];                                              \
        int32_t k = pos[r];                                                           \
        for (; k < end; k++) {                                                        \
            const uint32_t cj = (uint32_t)col[k];                                     \
            if (cj >= (uint32_t)hi) break;                                            \
            prefetch_ahead(x, col, k, end, hi, (D));                                  \
            const float v = vals[k];                                                  \
            const float *xr = x + (int64_t)cj * (D);                                  \
            for (int64_t j = 0; j < (D); j++) acc[j] = MAC(acc[j], v, xr[j]);         \
        }                                                                             \
        pos[r] = k;                                                                   \
        memcpy(out + r * (D), acc, (size_t)(D) * sizeof(float));                      \
    } while (0)

/* Rows in passes over blocks of x's columns (block_cols); a row's entries
   past the last column (an index out of range) are never read, and make it
   return -1. */
int v2ht_csr_spmm(int64_t n_rows, int64_t n_cols, int64_t d, const int32_t *crow, const int32_t *col,
                  const float *vals, const float *x, float *out, int64_t threads) {
    if (d < 1 || d > MAX_D) return -1;
    int32_t *pos = cursors(crow, n_rows);
    if (!pos) return -1;
    const int64_t step = pass_cols(n_cols, d);
    _Pragma("omp parallel num_threads(threads) if (threads > 1)")
    for (int64_t lo = 0; lo < n_cols || lo == 0; lo += step) {
        const int64_t hi = lo + step < n_cols ? lo + step : n_cols;
        const int first = lo == 0;
        _Pragma("omp for schedule(dynamic, 64)")
        for (int64_t r = 0; r < n_rows; r++) {
            if (d == 64) ROW(64);
            else if (d == 32) ROW(32);
            else ROW(d);
        }
        if (hi >= n_cols) break;
    }
    return finish(pos, crow, n_rows);
}

/* Sampled dense-dense product: out[k] = <a[r, :], b[col[k], :]> for every
   entry k of row r (torch.sparse.sampled_addmm with beta 0, alpha 1: the
   gradient of propagation's edge values and the factored edge weights of
   Eq. 4). The dot product is summed as torch's CPU kernel sums it
   (at::vec::map2_reduce_all): lanes of `width` floats (16 with AVX-512, 8
   with AVX2), the first chunk's products, then each further chunk's added
   lane by lane (with FMA when `fma`), then the lanes folded in halves
   (lane e with e + width/2, then width/4, ...). native.py tries both widths
   and both contractions and keeps the one that is bit-identical here.
   Needs k a multiple of `width`; -1 otherwise, or for a column index out
   of range. */
/* One dot product in torch's order; W, KD and FMA are constants in each
   instance below, so the compiler keeps the lanes in one vector register. */
#define DOT(W, KD, FMA, ar, br, res)                                                  \
    do {                                                                              \
        float acc[W];                                                                 \
        for (int e = 0; e < (W); e++) acc[e] = (ar)[e] * (br)[e];                     \
        for (int64_t c = (W); c < (KD); c += (W))                                     \
            for (int e = 0; e < (W); e++)                                             \
                acc[e] = (FMA) ? __builtin_fmaf((ar)[c + e], (br)[c + e], acc[e])     \
                               : acc[e] + (ar)[c + e] * (br)[c + e];                  \
        for (int h = (W) / 2; h >= 1; h /= 2)                                         \
            for (int e = 0; e < h; e++) acc[e] = acc[e] + acc[e + h];                 \
        (res) = acc[0] + 0.0f; /* alpha * dot + beta * 0 */                           \
    } while (0)

#define SDDMM(NAME, W, KD, FMA)                                                       \
static int NAME(int64_t n_rows, int64_t n_b, int64_t kd, const int32_t *crow, const int32_t *col, \
                const float *a, const float *b, float *out, int64_t threads) {        \
    int32_t *pos = cursors(crow, n_rows);                                             \
    if (!pos) return -1;                                                              \
    const int64_t step = pass_cols(n_b, kd);                                          \
    _Pragma("omp parallel num_threads(threads) if (threads > 1)")                     \
    for (int64_t lo = 0; lo < n_b || lo == 0; lo += step) {                           \
        const int64_t hi = lo + step < n_b ? lo + step : n_b;                         \
        _Pragma("omp for schedule(dynamic, 64)")                                      \
        for (int64_t r = 0; r < n_rows; r++) {                                        \
            const float *ar = a + r * kd;                                             \
            const int32_t end = crow[r + 1];                                          \
            int32_t k = pos[r];                                                       \
            for (; k < end; k++) {                                                    \
                const uint32_t cj = (uint32_t)col[k];                                 \
                if (cj >= (uint32_t)hi) break;                                        \
                prefetch_ahead(b, col, k, end, hi, (KD));                             \
                DOT(W, KD, FMA, ar, b + (int64_t)cj * kd, out[k]);                    \
            }                                                                         \
            pos[r] = k;                                                               \
        }                                                                             \
        if (hi >= n_b) break;                                                         \
    }                                                                                 \
    return finish(pos, crow, n_rows);                                                 \
}

SDDMM(sddmm_8_64_0, 8, 64, 0)
SDDMM(sddmm_8_64_1, 8, 64, 1)
SDDMM(sddmm_16_64_0, 16, 64, 0)
SDDMM(sddmm_16_64_1, 16, 64, 1)
SDDMM(sddmm_8_32_0, 8, 32, 0)
SDDMM(sddmm_8_32_1, 8, 32, 1)
SDDMM(sddmm_16_32_0, 16, 32, 0)
SDDMM(sddmm_16_32_1, 16, 32, 1)
SDDMM(sddmm_8_any_0, 8, kd, 0)
SDDMM(sddmm_8_any_1, 8, kd, 1)
SDDMM(sddmm_16_any_0, 16, kd, 0)
SDDMM(sddmm_16_any_1, 16, kd, 1)

int v2ht_csr_sddmm(int64_t n_rows, int64_t n_b, int64_t kd, const int32_t *crow, const int32_t *col,
                   const float *a, const float *b, float *out, int64_t width, int64_t fma, int64_t threads) {
    if ((width != 16 && width != 8) || kd < width || kd % width) return -1;
#define PICK(W, KD) (fma ? sddmm_##W##_##KD##_1 : sddmm_##W##_##KD##_0)
    int (*fn)(int64_t, int64_t, int64_t, const int32_t *, const int32_t *, const float *, const float *, float *,
              int64_t);
    if (width == 8) fn = kd == 64 ? PICK(8, 64) : kd == 32 ? PICK(8, 32) : PICK(8, any);
    else fn = kd == 64 ? PICK(16, 64) : kd == 32 ? PICK(16, 32) : PICK(16, any);
#undef PICK
    return fn(n_rows, n_b, kd, crow, col, a, b, out, threads);
}
