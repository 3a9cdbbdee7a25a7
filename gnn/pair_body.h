/* One (post, hashtag) pair's block of p0, shared by pair_input.c (p0 for
   a whole tile) and pair_mlp.c (p0 a few rows at a time, straight into the
   MLP). See pair_input.c for what it computes and why in this order. */
#ifndef V2HT_PAIR_BODY_H
#define V2HT_PAIR_BODY_H
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#if defined(V2HT_FMA)
#define BLEND(y, l, dd) __builtin_fmaf((l), (dd), (y))
#define MIX(hu, e, g) __builtin_fmaf((e), (g), (hu))
#else
#define BLEND(y, l, dd) ((y) + (l) * (dd))
#define MIX(hu, e, g) ((hu) + (e) * (g))
#endif

/* One modality's segment tables (encoders.SegmentTables), all C-contiguous. */
typedef struct {
    const float *neg_sorted; /* (B, T) */
    const float *pw;         /* (B, T + 1) */
    const float *n_inactive; /* (B, T + 1) */
    const float *yd;         /* (B, T + 1, 2 d) */
    const float *c;          /* (n,) shared by every post, or (B, n) */
    const float *ef;         /* (B, n): exp(-max(c + top, 0)), from torch */
    const int32_t *k;        /* NULL, or each pair's k, counted ahead (native.step_counts) */
    int64_t t;               /* T */
    int64_t c_post_stride;   /* 0 or n */
    int64_t k_post_stride;   /* k's row stride */
} v2ht_modality;

#define V2HT_MAX_MODALITIES 8

/* lo = the first index with ns[lo] >= cv (t if none), branch-free: the
   compares are data-dependent coin flips a branch predictor loses. */
static inline int64_t lower_bound(const float *ns, int64_t t, float cv)
{
    const float *base = ns;
    while (t > 1) {
        const int64_t half = t >> 1;
        base = base[half - 1] < cv ? base + half : base;
        t -= half;
    }
    return (base - ns) + (base[0] < cv);
}

/* bfloat16 as torch stores it: the top half of a float, rounded to nearest
   even (c10::BFloat16's rounding; NaN to its canonical quiet NaN). */
static inline float bf2f(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline uint16_t f2bf(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    const uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return x != x ? (uint16_t)0x7FC0 : (uint16_t)r;
}

#if defined(__AVX512F__)
#include <immintrin.h>

#if defined(V2HT_FMA)
#define BLEND16(y, l, dd) _mm512_fmadd_ps((l), (dd), (y))
#define MIX16(hu, e, g) _mm512_fmadd_ps((e), (g), (hu))
#else
#define BLEND16(y, l, dd) _mm512_add_ps((y), _mm512_mul_ps((l), (dd)))
#define MIX16(hu, e, g) _mm512_add_ps((hu), _mm512_mul_ps((e), (g)))
#endif

#if defined(__AVX512BF16__)
/* f2bf on 16 floats at once, in integer ops */
static inline __m256i f2bf16_soft(__m512 x)
{
    const __m512i u = _mm512_castps_si512(x);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd)), 16);
    r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC0));
    return _mm512_cvtepi32_epi16(r);
}

/* The same through VCVTNEPS2BF16 (one instruction), which rounds to nearest
   even as f2bf does but flushes denormals to zero and keeps NaN payloads:
   a vector holding either takes the integer ops. */
static inline __m256i f2bf16(__m512 x)
{
    if (__builtin_expect(_mm512_fpclass_ps_mask(x, 0x01 | 0x20 | 0x80) != 0, 0)) /* QNaN, denormal, SNaN */
        return f2bf16_soft(x);
    return (__m256i)_mm512_cvtneps_pbh(x);
}


/* 32 floats (lo, then hi) rounded to bfloat16 at y: one VCVTNE2PS2BF16, or
   f2bf16's integer path for vectors holding a NaN or a denormal */
static inline void store32_bf16(uint16_t *y, __m512 lo, __m512 hi)
{
    if (__builtin_expect((_mm512_fpclass_ps_mask(lo, 0xa1) | _mm512_fpclass_ps_mask(hi, 0xa1)) != 0, 0)) {
        _mm256_storeu_si256((__m256i *)y, f2bf16(lo));
        _mm256_storeu_si256((__m256i *)(y + 16), f2bf16(hi));
    } else {
        _mm512_storeu_si512(y, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}
#define STORE32(y, lo, hi) store32_bf16((y), (lo), (hi))
#endif

/* pair_body's blocks, 16 float32 values at a time: the same ops in the same
   order, g and e_h * e_u held in registers. */
static inline __attribute__((always_inline)) void pair_blocks(
    int64_t n_mod, const int64_t d, const float *const *y, const float *lam, const float *eh, const float *eu,
    float *out, uint16_t *bf)
{
    /* bf: write each vector rounded to bfloat16 there instead (f2bf16, the
       conversion round_bf16 makes), never the float32 block */
#if defined(__AVX512BF16__)
#define STORE16(i, v) (bf ? _mm256_storeu_si256((__m256i *)(bf + (i)), f2bf16(v)) : _mm512_storeu_ps(out + (i), (v)))
#else
#define STORE16(i, v) _mm512_storeu_ps(out + (i), (v))
#endif
    if (eu) {
        __m512 g[16], hu[16]; /* d <= 256 */
        for (int64_t v = 0; v < d / 16; ++v) {
            const __m512 h = _mm512_loadu_ps(eh + 16 * v), u = _mm512_loadu_ps(eu + 16 * v);
            g[v] = _mm512_add_ps(h, u);
            hu[v] = _mm512_mul_ps(h, u);
        }
        for (int64_t m = 0; m < n_mod; ++m) {
            const __m512 l = _mm512_set1_ps(lam[m]);
            const float *ym = y[m];
#if defined(__AVX512BF16__)
            if (bf && d % 32 == 0) { /* two vectors a conversion and a store */
                for (int64_t v = 0; v < d / 16; v += 2) {
                    const __m512 lo = MIX16(hu[v], BLEND16(_mm512_loadu_ps(ym + 16 * v), l,
                                                           _mm512_loadu_ps(ym + d + 16 * v)), g[v]);
                    const __m512 hi = MIX16(hu[v + 1], BLEND16(_mm512_loadu_ps(ym + 16 * v + 16), l,
                                                               _mm512_loadu_ps(ym + d + 16 * v + 16)), g[v + 1]);
                    STORE32(bf + m * d + 16 * v, lo, hi);
                }
                continue;
            }
#endif
            for (int64_t v = 0; v < d / 16; ++v) {
                const __m512 e = BLEND16(_mm512_loadu_ps(ym + 16 * v), l, _mm512_loadu_ps(ym + d + 16 * v));
                STORE16(m * d + 16 * v, MIX16(hu[v], e, g[v]));
            }
        }
    } else {
        for (int64_t m = 0; m < n_mod; ++m) {
            const __m512 l = _mm512_set1_ps(lam[m]);
            const float *ym = y[m];
            for (int64_t v = 0; v < d / 16; ++v) {
                const __m512 e = BLEND16(_mm512_loadu_ps(ym + 16 * v), l, _mm512_loadu_ps(ym + d + 16 * v));
                STORE16(m * d + 16 * v, _mm512_mul_ps(e, _mm512_loadu_ps(eh + 16 * v)));
            }
        }
    }
#undef STORE16
}
#endif


/* x rounded to bfloat16, n values, as f2bf each */
static inline void round_bf16(const float *x, int64_t n, uint16_t *y)
{
    int64_t i = 0;
#if defined(__AVX512BF16__)
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), f2bf16(_mm512_loadu_ps(x + i)));
#endif
    for (; i < n; ++i)
        y[i] = f2bf(x[i]);
}

/* Pair (p, j)'s lookups for each modality: the segment-table row y[m]
   (Y_k | X_k - Y_k) and the blend weight lam[m] (encoders.segment_lookup). */
static inline __attribute__((always_inline)) void pair_lookup(
    int64_t p, int64_t j, int64_t pair, int64_t n_mod, const int64_t d, const v2ht_modality *mods,
    const float **y, float *lam)
{
    for (int64_t m = 0; m < n_mod; ++m) { /* the searches first: independent, so they overlap */
        const v2ht_modality *md = mods + m;
        const float cv = md->c[p * md->c_post_stride + j];
        const int64_t k = md->k ? md->k[p * md->k_post_stride + j] : lower_bound(md->neg_sorted + p * md->t, md->t, cv);
        const int64_t row = p * (md->t + 1) + k;
        float l = 0.0f;
        if (k > 0) {
            const float act = md->pw[row];
            const float inact = md->n_inactive[row] * md->ef[pair];
            l = act / (act + inact);
        }
        lam[m] = l;
        y[m] = md->yd + row * 2 * d;
    }
}

/* Pair (p, j)'s block of p0 from its lookups; with ``bf`` (a bfloat16 p0's
   block for this pair), where the vector path runs, the block is written
   there rounded and 1 is returned; otherwise the float32 block goes to
   p0 + out0 and 0 is returned (the caller rounds it). */
static inline __attribute__((always_inline)) int pair_write(
    int64_t p, int64_t j, int64_t n_mod, const int64_t d, const float *const *y, const float *lam,
    const float *e_h, int64_t eh_post_stride, const float *e_u, float *p0, int64_t out0, uint16_t *bf)
{
    const int64_t eh0 = p * eh_post_stride + j * d;
#if defined(__AVX512F__)
    if (d % 16 == 0 && d <= 256) {
        pair_blocks(n_mod, d, y, lam, e_h + eh0, e_u ? e_u + p * d : 0, p0 + out0, bf);
#if defined(__AVX512BF16__)
        return bf != 0;
#else
        return 0;
#endif
    }
#endif
    if (e_u) {
        float g[d], hu[d]; /* shared by every modality's block */
        for (int64_t i = 0; i < d; ++i) {
            const float h = e_h[eh0 + i], u = e_u[p * d + i];
            g[i] = h + u;
            hu[i] = h * u;
        }
        for (int64_t m = 0; m < n_mod; ++m) {
            const float *ym = y[m], *dd = y[m] + d;
            const float l = lam[m];
            for (int64_t i = 0; i < d; ++i)
                p0[out0 + m * d + i] = MIX(hu[i], BLEND(ym[i], l, dd[i]), g[i]);
        }
    } else {
        for (int64_t m = 0; m < n_mod; ++m) {
            const float *ym = y[m], *dd = y[m] + d;
            const float l = lam[m];
            for (int64_t i = 0; i < d; ++i)
                p0[out0 + m * d + i] = BLEND(ym[i], l, dd[i]) * e_h[eh0 + i];
        }
    }
    return 0;
}

/* One pair (post pair / n, hashtag pair % n); inlined with d constant, so
   the d-loops unroll into whole vector registers. float32 throughout (a
   bfloat16 MLP gets p0 rounded once, pair_mlp.c); returns as pair_write. */
static inline __attribute__((always_inline)) int pair_body(
    int64_t pair, int64_t n, int64_t n_mod, const int64_t d, const v2ht_modality *mods,
    const float *e_h, int64_t eh_post_stride, const float *e_u, float *p0, int64_t out0, uint16_t *bf)
{
    const int64_t p = pair / n, j = pair % n;
    const float *y[V2HT_MAX_MODALITIES];
    float lam[V2HT_MAX_MODALITIES];
    pair_lookup(p, j, pair, n_mod, d, mods, y, lam);
    return pair_write(p, j, n_mod, d, y, lam, e_h, eh_post_stride, e_u, p0, out0, bf);
}

#endif
