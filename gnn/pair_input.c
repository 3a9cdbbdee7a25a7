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
#include "pair_body.h"

#define V2HT_PAIRS(D)                                                                       \
    _Pragma("omp parallel for num_threads(threads) schedule(static) if (threads > 1)")     \
    for (int64_t pair = 0; pair < pairs; ++pair)                                            \
        pair_body(pair, n, n_mod, D, mods, e_h, eh_post_stride, e_u, p0, pair * n_mod * D, 0)

/* float32 throughout. Returns 0, or -1 (nothing written) for more
   modalities than it holds. */
int v2ht_pair_input(int64_t pairs, int64_t threads, int64_t n, int64_t n_mod, int64_t d,
                    const v2ht_modality *mods, const float *e_h, int64_t eh_post_stride,
                    const float *e_u, float *p0)
{
    if (n_mod > V2HT_MAX_MODALITIES)
        return -1;
    if (d == 64)
        V2HT_PAIRS(64);
    else
        V2HT_PAIRS(d);
    return 0;
}

#define V2HT_PAIRS_BF16(D)                                                                  \
    _Pragma("omp for schedule(static)")                                                     \
    for (int64_t pair = 0; pair < pairs; ++pair) {                                          \
        if (!pair_body(pair, n, n_mod, D, mods, e_h, eh_post_stride, e_u, block, 0,         \
                       p0 + pair * n_mod * D))                                              \
            round_bf16(block, n_mod * D, p0 + pair * n_mod * D);                            \
    }

/* p0 rounded to bfloat16 as it is written: each vector of the pair's
   float32 values rounded in registers where the vector path runs (else its
   float32 block, then f2bf), the same values as torch's .to(bfloat16) of the
   float32 p0, without a float32 tile going through memory and a second
   pass to round it (a
   bfloat16 MLP's input on a CPU whose bfloat16 GEMMs are torch's, AMX).
   Returns 0, or -1 (nothing written) for shapes it does not hold. */
int v2ht_pair_input_bf16(int64_t pairs, int64_t threads, int64_t n, int64_t n_mod, int64_t d,
                         const v2ht_modality *mods, const float *e_h, int64_t eh_post_stride,
                         const float *e_u, uint16_t *p0)
{
    if (n_mod > V2HT_MAX_MODALITIES || d > 256)
        return -1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float block[V2HT_MAX_MODALITIES * 256] __attribute__((aligned(64)));
        if (d == 64) {
            V2HT_PAIRS_BF16(64)
        } else {
            V2HT_PAIRS_BF16(d)
        }
    }
    return 0;
}

/* native.step_counts' k (B, H) int32 for every post and hashtag score: walk
   each post's sorted steps and the scores in ascending order (c_sorted, NaN
   last, as torch sorts) together; score order[i] gets the number of steps
   t with !(neg_sorted[t] >= c), what torch.searchsorted counts (NaN
   included). One pass of T + H a post, where the torch ops scattered
   every (post, hashtag) count through a sort permutation. */
void v2ht_step_counts(int64_t b, int64_t t, int64_t h, const float *neg_sorted, const float *c_sorted,
                      const int64_t *order, int32_t *k, int64_t threads)
{
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t p = 0; p < b; ++p) {
        const float *ns = neg_sorted + p * t;
        int32_t *kp = k + p * h;
        int64_t ti = 0;
        for (int64_t i = 0; i < h; ++i) {
            const float cv = c_sorted[i];
            while (ti < t && !(ns[ti] >= cv))
                ++ti;
            kp[order[i]] = (int32_t)ti;
        }
    }
}
