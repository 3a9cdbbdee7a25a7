/* Propagation's sparse products, the largest part of a training step at
   INSVIDEO size (3.6M directed edges). First out = S @ x for a CSR matrix S
   with int32 indices and float32 values: Eq. 7's A^ Y and its backward.

   Each output row is sum_k vals[k] * x[col[k], :] over the row's entries in
   storage order, one multiply and one add per term (FMA only in the
   V2HT_FMA build): the order torch.sparse.mm's CPU path sums in here, so
   native.py uses this loop only after a probe finds it bit-identical. What
   it adds over that path is a software prefetch of the x row eight entries
   ahead: the rows are gathered at random, and waiting on them was most of
   the time (13 -> 5.5 ms for one product at INSVIDEO size).

   Rows are split over `threads` OpenMP threads (torch's own pool, as in
   pair_input.c). A column index outside 0..n_cols-1 stops the loop with -1
   before it reads outside x; the caller then uses torch. */
#include <stdint.h>
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

/* One row; D is a compile-time width for the common cases, else d. */
#define ROW(D)                                                                        \
    do {                                                                              \
        float acc[MAX_D];                                                             \
        for (int64_t j = 0; j < (D); j++) acc[j] = 0.0f;                              \
        const int32_t end = crow[r + 1];                                              \
        for (int32_t k = crow[r]; k < end; k++) {                                     \
            prefetch_ahead(x, col, k, end, n_cols, (D));                              \
            const uint32_t cj = (uint32_t)col[k];                                     \
            if (cj >= (uint32_t)n_cols) { bad = 1; break; }                           \
            const float v = vals[k];                                                  \
            const float *xr = x + (int64_t)cj * (D);                                  \
            for (int64_t j = 0; j < (D); j++) acc[j] = MAC(acc[j], v, xr[j]);         \
        }                                                                             \
        memcpy(out + r * (D), acc, (size_t)(D) * sizeof(float));                      \
    } while (0)

int v2ht_csr_spmm(int64_t n_rows, int64_t n_cols, int64_t d, const int32_t *crow, const int32_t *col,
                  const float *vals, const float *x, float *out, int64_t threads) {
    if (d < 1 || d > MAX_D) return -1;
    int bad = 0;
    _Pragma("omp parallel for num_threads(threads) schedule(dynamic, 64) if (threads > 1) reduction(|:bad)")
    for (int64_t r = 0; r < n_rows; r++) {
        if (d == 64) ROW(64);
        else if (d == 32) ROW(32);
        else ROW(d);
    }
    return bad ? -1 : 0;
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
    int bad = 0;                                                                      \
    _Pragma("omp parallel for num_threads(threads) schedule(dynamic, 64) if (threads > 1) reduction(|:bad)") \
    for (int64_t r = 0; r < n_rows; r++) {                                            \
        const float *ar = a + r * kd;                                                 \
        const int32_t end = crow[r + 1];                                              \
        for (int32_t k = crow[r]; k < end; k++) {                                     \
            prefetch_ahead(b, col, k, end, n_b, (KD));                                \
            const uint32_t cj = (uint32_t)col[k];                                     \
            if (cj >= (uint32_t)n_b) { bad = 1; break; }                              \
            DOT(W, KD, FMA, ar, b + (int64_t)cj * kd, out[k]);                        \
        }                                                                             \
    }                                                                                 \
    return bad ? -1 : 0;                                                              \
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
