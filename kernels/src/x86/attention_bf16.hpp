// Attention over a bf16 KV cache with bf16 products (AVX512-BF16; included by avx512bf16.cpp).
//
// Why: decode over a long context waits on attention's multiplies, and f32 FMAs cap their rate.
// vdpbf16ps takes two pairs of bf16 per 32-bit lane and adds both products to an f32 lane:
// twice the products of an f32 FMA per instruction. The bf16 cache stores keys and values in
// exactly those pairs (attention.hpp), so its words are the instruction's operands as loaded:
//
//   scores: lane = key, pair = (k[2i], k[2i+1]); the query's (q[2i], q[2i+1]) is broadcast.
//   output: lane = dim, pair = (v_2m[d], v_2m+1[d]); the probabilities (p_2m, p_2m+1) are
//           broadcast.
//
// q and p are rounded to bf16 (round to nearest even); k and v are bf16 already; a product of
// two bf16 is exact in f32 and every sum is f32. The online softmax is simd/attention.hpp's
// recurrence with AVX-512 masks and in-register reductions: with products at twice the rate, the
// generic step (a masking select per vector, lanes stored for a scalar max) took as long as the
// products.
// Latent attention (no value run) and head sizes that are not a multiple of 8 (or above 256)
// take the f32 kernel, as do the other cache types (bf16_attention_applies).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "simd/attention.hpp"

#if !defined(__AVX512BF16__)
#error "attention_bf16.hpp needs -mavx512bf16"
#endif

namespace kiln::kernels {
namespace {

inline constexpr size_t bf16_max_head_dim = 256;
// exp(x) for x <= 0 (and -inf -> 0): simd/attention.hpp's exp_nonpositive with 2^n applied by
// scalef, which also flushes below 2^-149 to 0 (no compare and select): 12% less time for the
// whole kernel in L2 than that generic version.
inline __m512 exp_nonpositive_scalef(__m512 x) {
    const __m512 t = _mm512_max_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _mm512_set1_ps(-151.0f));
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(1.5403530e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

// One row's online-softmax step over a tile (simd/attention.hpp's online_softmax_step, in
// AVX-512 with masks and reductions in registers): scores s0 (keys 0-15) and s1 (16-31) are
// scaled, saturated, masked to the first `visible` keys; the probabilities go out as bf16
// pairs; returns the rescale factor of the row's output so far.
inline float bf16_softmax_step(__m512 s0, __m512 s1, size_t visible, float scale, float& run_max, float& run_sum,
                               uint32_t* p_pairs) {
    const __m512 vscale = _mm512_set1_ps(scale), hi = _mm512_set1_ps(std::numeric_limits<float>::max()),
                 lo = _mm512_set1_ps(-std::numeric_limits<float>::max()),
                 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    const __mmask16 m0 = visible >= 16 ? __mmask16(0xffff) : __mmask16((1u << visible) - 1);
    const __mmask16 m1 = visible >= 32 ? __mmask16(0xffff) : visible > 16 ? __mmask16((1u << (visible - 16)) - 1) : 0;
    s0 = _mm512_mask_mov_ps(neg_inf, m0, _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(s0, vscale), lo), hi));
    s1 = _mm512_mask_mov_ps(neg_inf, m1, _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(s1, vscale), lo), hi));
    const float m_old = run_max, m_new = std::max(m_old, _mm512_reduce_max_ps(_mm512_max_ps(s0, s1)));
    const __m512 vm = _mm512_set1_ps(m_new);
    const __m512 e0 = exp_nonpositive_scalef(_mm512_sub_ps(s0, vm));
    const __m512 e1 = exp_nonpositive_scalef(_mm512_sub_ps(s1, vm));
    _mm512_storeu_si512(p_pairs, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
    const float alpha = m_old == m_new ? 1.0f : std::exp(m_old - m_new);  // 0 on the first visible tile
    run_sum = run_sum * alpha + _mm512_reduce_add_ps(_mm512_add_ps(e0, e1));
    run_max = m_new;
    return alpha;
}

inline __m512bh as_bh(__m512i x) { return (__m512bh)x; }
inline __m256bh as_bh(__m256i x) { return (__m256bh)x; }

// Scores of R rows against one key tile (words [pairs][kv_tile]): s[r][h] = q_r . k for keys
// 16h .. 16h + 15. Each key vector is loaded once for the R rows: 2R independent chains.
// next_k/next_v (or null): the next tile's keys and values (pairs * 128 bytes each), fetched
// a line at a time along the way. Tiles are 4 KiB pages for head_dim 64, where the hardware
// prefetchers stop; one prefetch per line loaded keeps DRAM busy without flooding the queue.
template <int R>
void bf16_tile_scores(const uint32_t* const* qp, const uint32_t* kt, size_t pairs, fbatch<avx512_arch> (&s)[R][2],
                      const std::byte* next_k, const std::byte* next_v) {
    __m512 acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (size_t i = 0; i < pairs; ++i) {
        if (next_k) {
            for (const std::byte* run : {next_k, next_v})
                for (size_t line : {128 * i, 128 * i + 64})
                    _mm_prefetch(reinterpret_cast<const char*>(run + line), _MM_HINT_T0);
        }
        const __m512i k0 = _mm512_loadu_si512(kt + i * kv_tile), k1 = _mm512_loadu_si512(kt + i * kv_tile + 16);
        for (int r = 0; r < R; ++r) {
            const __m512i q = _mm512_set1_epi32(int(qp[r][i]));
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], as_bh(q), as_bh(k0));
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], as_bh(q), as_bh(k1));
        }
    }
    for (int r = 0; r < R; ++r) s[r][0] = acc[r][0], s[r][1] = acc[r][1];
}

// out_r[d0 .. d0 + 16C) = alpha_r * out_r + sum over the pairs of the first n positions of
// (p_2m, p_2m+1) . (v_2m[d], v_2m+1[d]); vt = words [kv_tile / 2][hd]. When n is odd, the last
// pair keeps only its first position: the second may be unwritten (any bits, NaN included) and
// 0 * NaN would reach the output.
template <int R, int C>
void bf16_tile_pv(float* const* out, const uint32_t* const* pp, const float* alpha, const uint32_t* vt, size_t hd,
                  size_t d0, size_t n) {
    const __m512i low_halves = _mm512_set1_epi32(0xffff);
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c)
            acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(out[r] + d0 + 16 * c), _mm512_set1_ps(alpha[r]));
    for (size_t m = 0; 2 * m < n; ++m) {
        __m512i v[C];
        for (int c = 0; c < C; ++c) {
            v[c] = _mm512_loadu_si512(vt + m * hd + d0 + 16 * c);
            if (2 * m + 1 >= n) v[c] = _mm512_and_si512(v[c], low_halves);
        }
        for (int r = 0; r < R; ++r) {
            const __m512i p = _mm512_set1_epi32(int(pp[r][m]));
            for (int c = 0; c < C; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], as_bh(p), as_bh(v[c]));
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) _mm512_storeu_ps(out[r] + d0 + 16 * c, acc[r][c]);
}

// The last 8 dims when hd = 8 mod 16, with 256-bit vectors.
template <int R>
void bf16_tail_pv(float* const* out, const uint32_t* const* pp, const float* alpha, const uint32_t* vt, size_t hd,
                  size_t d0, size_t n) {
    const __m256i low_halves = _mm256_set1_epi32(0xffff);
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_mul_ps(_mm256_loadu_ps(out[r] + d0), _mm256_set1_ps(alpha[r]));
    for (size_t m = 0; 2 * m < n; ++m) {
        __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(vt + m * hd + d0));
        if (2 * m + 1 >= n) v = _mm256_and_si256(v, low_halves);
        for (int r = 0; r < R; ++r)
            acc[r] = _mm256_dpbf16_ps(acc[r], as_bh(_mm256_set1_epi32(int(pp[r][m]))), as_bh(v));
    }
    for (int r = 0; r < R; ++r) _mm256_storeu_ps(out[r] + d0, acc[r]);
}

template <int R>
void bf16_rows_pv(float* const* out, const uint32_t* const* pp, const float* alpha, const uint32_t* vt, size_t hd,
                  size_t n) {
    size_t d = 0;
    for (; d + 64 <= hd; d += 64) bf16_tile_pv<R, 4>(out, pp, alpha, vt, hd, d, n);
    for (; d + 16 <= hd; d += 16) bf16_tile_pv<R, 1>(out, pp, alpha, vt, hd, d, n);
    if (d < hd) bf16_tail_pv<R>(out, pp, alpha, vt, hd, d, n);
}

// n floats (a multiple of 8) as n / 2 bf16 pairs.
inline void to_bf16_pairs(const float* x, size_t n, uint32_t* pairs) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256bh b = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(pairs + i / 2), (__m256i)b);
    }
    if (i < n) {
        const __m128bh b = _mm256_cvtneps_pbh(_mm256_loadu_ps(x + i));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(pairs + i / 2), (__m128i)b);
    }
}

void bf16_attention(const attention_args& a) {
    const size_t hd = a.head_dim;
    static_assert(bf16_max_head_dim == 256);  // the bound bf16_attention_applies states
    if (!bf16_attention_applies(a.type, hd, !a.values)) return simd_attention<avx512_arch>(a);
    using batch = fbatch<avx512_arch>;
    constexpr size_t R = 8;  // rows per score micro-kernel: 16 accumulators
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const size_t rows = a.n_tokens * a.group, tile_bytes = kv_tile_bytes(a.type, hd);
    const auto* keys = static_cast<const std::byte*>(a.keys);
    const auto* values = static_cast<const std::byte*>(a.values);
    alignas(64) uint32_t q_pairs[attention_row_block][bf16_max_head_dim / 2];
    alignas(64) uint32_t p_pairs[attention_row_block][kv_tile / 2];
    float run_max[attention_row_block], run_sum[attention_row_block], alpha[attention_row_block];
    size_t visible[attention_row_block];
    const uint32_t* q_rows[attention_row_block];
    const uint32_t* p_rows[attention_row_block];
    float* out_rows[attention_row_block];

    for (size_t rb = 0; rb < rows; rb += attention_row_block) {
        const size_t nr = std::min(attention_row_block, rows - rb);
        for (size_t r = 0; r < nr; ++r) {
            run_max[r] = neg_inf;
            run_sum[r] = 0.0f;
            const size_t t = (rb + r) / a.group, g = (rb + r) % a.group;
            to_bf16_pairs(a.q + t * a.q_stride + g * hd, hd, q_pairs[r]);
            q_rows[r] = q_pairs[r];
            p_rows[r] = p_pairs[r];
            out_rows[r] = a.out + t * a.out_stride + g * hd;
            std::memset(out_rows[r], 0, hd * sizeof(float));
        }
        // Keys past the block's last visible position are never needed.
        const size_t last_token = (rb + nr - 1) / a.group;
        const size_t end = std::min(a.key_end, a.first_pos + last_token + 1);
        for (size_t tile_start = a.key_begin; tile_start < end; tile_start += kv_tile) {
            const size_t tile = tile_start / kv_tile, in_tile = std::min(kv_tile, end - tile_start);
            const auto* kt = reinterpret_cast<const uint32_t*>(keys + tile * tile_bytes);
            const auto* vt = reinterpret_cast<const uint32_t*>(values + tile * tile_bytes);
            auto update_rows = [&](auto rows_tag, size_t first) {
                constexpr int n_rows = decltype(rows_tag)::value;
                batch s[n_rows][2];
                const bool prefetch = first == 0 && tile_start + kv_tile < end;
                bf16_tile_scores<n_rows>(q_rows + first, kt, hd / 2, s,
                                         prefetch ? keys + (tile + 1) * tile_bytes : nullptr,
                                         prefetch ? values + (tile + 1) * tile_bytes : nullptr);
                for (int i = 0; i < n_rows; ++i) {
                    const size_t r = first + size_t(i), limit = a.first_pos + (rb + r) / a.group + 1;
                    if (limit <= tile_start) {
                        visible[r] = 0;
                        alpha[r] = 1.0f;
                        std::fill_n(p_pairs[r], kv_tile / 2, 0u);
                        continue;
                    }
                    visible[r] = std::min(in_tile, limit - tile_start);
                    alpha[r] = bf16_softmax_step(s[i][0], s[i][1], visible[r], a.scale, run_max[r], run_sum[r],
                                                 p_pairs[r]);
                }
            };
            size_t r0 = 0;
            for (; r0 + R <= nr; r0 += R) update_rows(std::integral_constant<int, int(R)>{}, r0);
            for (; r0 < nr; ++r0) update_rows(std::integral_constant<int, 1>{}, r0);
            // Output rows in fours over the positions the group's longest row sees; a row that
            // sees nothing here has p = 0 and alpha = 1.
            size_t r = 0;
            for (; r + 4 <= nr; r += 4) {
                const size_t n = *std::max_element(visible + r, visible + r + 4);
                if (n) bf16_rows_pv<4>(out_rows + r, p_rows + r, alpha + r, vt, hd, n);
            }
            for (; r < nr; ++r)
                if (visible[r]) bf16_rows_pv<1>(out_rows + r, p_rows + r, alpha + r, vt, hd, visible[r]);
        }
        finish_row_block(a, rb, nr, out_rows, run_max, run_sum, hd);
    }
}

}  // namespace
}  // namespace kiln::kernels
