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
    const void *yd;          /* (B, T + 1, 2 d), float32 or bfloat16 */
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

/* Element i of a float32 (bf = 0) or bfloat16 (bf = 1) array, as a float;
   rnd: a float32 op's result as the bf16 tensor holding it reads back. */
static inline __attribute__((always_inline)) float ld(const void *a, int64_t i, const int bf)
{
    return bf ? bf2f(((const uint16_t *)a)[i]) : ((const float *)a)[i];
}

static inline __attribute__((always_inline)) float rnd(float x, const int bf)
{
    return bf ? bf2f(f2bf(x)) : x;
}

static inline __attribute__((always_inline)) void st(void *a, int64_t i, float x, const int bf)
{
    if (bf)
        ((uint16_t *)a)[i] = f2bf(x);
    else
        ((float *)a)[i] = x;
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

/* pair_body's float32 blocks, 16 values at a time: the same ops in the same
   order, g and e_h * e_u held in registers. */
static inline __attribute__((always_inline)) void pair_blocks_f32(
    int64_t n_mod, const int64_t d, const char *const *y, const float *lam, const float *eh, const float *eu,
    float *out)
{
    if (eu) {
        __m512 g[16], hu[16]; /* d <= 256 */
        for (int64_t v = 0; v < d / 16; ++v) {
            const __m512 h = _mm512_loadu_ps(eh + 16 * v), u = _mm512_loadu_ps(eu + 16 * v);
            g[v] = _mm512_add_ps(h, u);
            hu[v] = _mm512_mul_ps(h, u);
        }
        for (int64_t m = 0; m < n_mod; ++m) {
            const __m512 l = _mm512_set1_ps(lam[m]);
            const float *ym = (const float *)y[m];
            for (int64_t v = 0; v < d / 16; ++v) {
                const __m512 e = BLEND16(_mm512_loadu_ps(ym + 16 * v), l, _mm512_loadu_ps(ym + d + 16 * v));
                _mm512_storeu_ps(out + m * d + 16 * v, MIX16(hu[v], e, g[v]));
            }
        }
    } else {
        for (int64_t m = 0; m < n_mod; ++m) {
            const __m512 l = _mm512_set1_ps(lam[m]);
            const float *ym = (const float *)y[m];
            for (int64_t v = 0; v < d / 16; ++v) {
                const __m512 e = BLEND16(_mm512_loadu_ps(ym + 16 * v), l, _mm512_loadu_ps(ym + d + 16 * v));
                _mm512_storeu_ps(out + m * d + 16 * v, _mm512_mul_ps(e, _mm512_loadu_ps(eh + 16 * v)));
            }
        }
    }
}
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

static inline __m512 bf16x16(const void *a) /* 16 bfloat16 as floats */
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)a)), 16));
}

static inline __m512 rnd16(__m512 x) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(f2bf16(x)), 16)); }

/* pair_body's bfloat16 blocks, 16 values at a time: the same ops, each
   rounded to bfloat16 as its scalar form rounds it. */
static inline __attribute__((always_inline)) void pair_blocks_bf16(
    int64_t n_mod, const int64_t d, const char *const *y, const float *lam, const uint16_t *eh,
    const uint16_t *eu, uint16_t *out)
{
    if (eu) {
        __m512 g[16], hu[16]; /* d <= 256 */
        for (int64_t v = 0; v < d / 16; ++v) {
            const __m512 h = bf16x16(eh + 16 * v), u = bf16x16(eu + 16 * v);
            g[v] = rnd16(_mm512_add_ps(h, u));
            hu[v] = rnd16(_mm512_mul_ps(h, u));
        }
        for (int64_t m = 0; m < n_mod; ++m) {
            const __m512 l = _mm512_set1_ps(lam[m]);
            for (int64_t v = 0; v < d / 16; ++v) {
                const __m512 e = rnd16(BLEND16(bf16x16(y[m] + 32 * v), l, bf16x16(y[m] + 2 * d + 32 * v)));
                _mm256_storeu_si256((__m256i *)(out + m * d + 16 * v), f2bf16(MIX16(hu[v], e, g[v])));
            }
        }
    } else {
        for (int64_t m = 0; m < n_mod; ++m) {
            const __m512 l = _mm512_set1_ps(lam[m]);
            for (int64_t v = 0; v < d / 16; ++v) {
                const __m512 e = rnd16(BLEND16(bf16x16(y[m] + 32 * v), l, bf16x16(y[m] + 2 * d + 32 * v)));
                _mm256_storeu_si256((__m256i *)(out + m * d + 16 * v), f2bf16(_mm512_mul_ps(e, bf16x16(eh + 16 * v))));
            }
        }
    }
}
#endif

/* One pair; inlined with d and bf constants, so the d-loops unroll into
   whole vector registers and the element type costs no branch. In bf16
   every op rounds its result as torch's bf16 op does (compute in float,
   round once). */
static inline __attribute__((always_inline)) void pair_body(
    int64_t pair, int64_t n, int64_t n_mod, const int64_t d, const int bf, const v2ht_modality *mods,
    const void *e_h, int64_t eh_post_stride, const void *e_u, void *p0, int64_t out0)
{
    const int64_t p = pair / n, j = pair % n, es = bf ? 2 : 4;
    const int64_t eh0 = p * eh_post_stride + j * d;
    const char *y[V2HT_MAX_MODALITIES];
    float lam[V2HT_MAX_MODALITIES];
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
        lam[m] = rnd(l, bf);
        y[m] = (const char *)md->yd + row * 2 * d * es;
    }
#if defined(__AVX512BF16__)
    if (bf && d % 16 == 0 && d <= 256) {
        pair_blocks_bf16(n_mod, d, y, lam, (const uint16_t *)e_h + eh0, e_u ? (const uint16_t *)e_u + p * d : 0,
                         (uint16_t *)p0 + out0);
        return;
    }
#endif
#if defined(__AVX512F__)
    if (!bf && d % 16 == 0 && d <= 256) {
        pair_blocks_f32(n_mod, d, y, lam, (const float *)e_h + eh0, e_u ? (const float *)e_u + p * d : 0,
                        (float *)p0 + out0);
        return;
    }
#endif
    if (e_u) {
        float g[d], hu[d]; /* shared by every modality's block */
        for (int64_t i = 0; i < d; ++i) {
            const float h = ld(e_h, eh0 + i, bf), u = ld(e_u, p * d + i, bf);
            g[i] = rnd(h + u, bf);
            hu[i] = rnd(h * u, bf);
        }
        for (int64_t m = 0; m < n_mod; ++m) {
            const void *ym = y[m], *dd = y[m] + d * es;
            const float l = lam[m];
            for (int64_t i = 0; i < d; ++i)
                st(p0, out0 + m * d + i, MIX(hu[i], rnd(BLEND(ld(ym, i, bf), l, ld(dd, i, bf)), bf), g[i]), bf);
        }
    } else {
        for (int64_t m = 0; m < n_mod; ++m) {
            const void *ym = y[m], *dd = y[m] + d * es;
            const float l = lam[m];
            for (int64_t i = 0; i < d; ++i)
                st(p0, out0 + m * d + i, rnd(BLEND(ld(ym, i, bf), l, ld(dd, i, bf)), bf) * ld(e_h, eh0 + i, bf), bf);
        }
    }
}

#endif
