/* The exact ranking's tile input, p0 of Eqs. 9 and 14, in one pass.

   For each (post, hashtag) pair and modality m: find k, the number of the
   post's steps active under the hashtag's score c (a binary search of the
   post's sorted -a, as torch.searchsorted does), the blend weight lam of
   encoders.segment_lookup, then read the post's segment-table row k
   (Y_k | X_k - Y_k, 2d floats), blend e~ = Y + lam (X - Y) and write
   e~ * (e_h + e_u) + e_h * e_u (or e~ * e_h without a user) into the pair's
   block of p0. For the full rank, k comes counted ahead for every hashtag
   at once (native.step_counts: a sort and a prefix sum instead of a binary
   search a pair, 3x less time here). The eager kernel does this in about a
   dozen passes over
   (pairs, d) and (pairs,) temporaries; here each pair is read and written
   once. exp() stays in torch (ef below), so every float op is one the eager
   kernel does, in its order: native.py checks the results are bit-identical
   before it uses this code.

   Pair q is post q / n, hashtag q % n; `threads` OpenMP threads split them.
   Built with -fopenmp, the library's libgomp.so.1 resolves to the one torch
   has already loaded: one thread pool, no second runtime spinning against
   torch's own threads. */
#include <stdint.h>
#include <stddef.h>

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

/* One pair; inlined with d a constant where d == 64, so the d-loops unroll
   into whole vector registers. */
static inline __attribute__((always_inline)) void pair_body(
    int64_t pair, int64_t n, int64_t n_mod, const int64_t d, const v2ht_modality *mods,
    const float *e_h, int64_t eh_post_stride, const float *e_u, float *p0)
{
    const int64_t p = pair / n, j = pair % n;
    const float *restrict eh = e_h + p * eh_post_stride + j * d;
    float *restrict out = p0 + pair * n_mod * d;
    const float *y[V2HT_MAX_MODALITIES];
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
        lam[m] = l;
        y[m] = md->yd + row * 2 * d;
    }
    if (e_u) {
        const float *restrict eu = e_u + p * d;
        float g[d], hu[d]; /* shared by every modality's block */
        for (int64_t i = 0; i < d; ++i) {
            g[i] = eh[i] + eu[i];
            hu[i] = eh[i] * eu[i];
        }
        for (int64_t m = 0; m < n_mod; ++m) {
            const float *restrict ym = y[m], *restrict dd = y[m] + d;
            const float l = lam[m];
            float *restrict o = out + m * d;
            for (int64_t i = 0; i < d; ++i)
                o[i] = MIX(hu[i], BLEND(ym[i], l, dd[i]), g[i]);
        }
    } else {
        for (int64_t m = 0; m < n_mod; ++m) {
            const float *restrict ym = y[m], *restrict dd = y[m] + d;
            const float l = lam[m];
            float *restrict o = out + m * d;
            for (int64_t i = 0; i < d; ++i)
                o[i] = BLEND(ym[i], l, dd[i]) * eh[i];
        }
    }
}

/* Returns 0, or -1 (nothing written) for more modalities than it holds. */
int v2ht_pair_input_f32(int64_t pairs, int64_t threads, int64_t n, int64_t n_mod, int64_t d,
                        const v2ht_modality *mods, const float *e_h, int64_t eh_post_stride,
                        const float *e_u, float *p0)
{
    if (n_mod > V2HT_MAX_MODALITIES)
        return -1;
    if (d == 64) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t pair = 0; pair < pairs; ++pair)
            pair_body(pair, n, n_mod, 64, mods, e_h, eh_post_stride, e_u, p0);
    } else {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t pair = 0; pair < pairs; ++pair)
            pair_body(pair, n, n_mod, d, mods, e_h, eh_post_stride, e_u, p0);
    }
    return 0;
}
