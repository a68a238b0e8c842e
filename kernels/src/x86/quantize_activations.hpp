// x86 activation quantization to the int8 record of kernels.hpp, bit-identical to the scalar
// reference (same IEEE operations; cvtps rounds to nearest even like nearbyint).
#pragma once
#include "activations.hpp"
#include "x86/int8_avx2.hpp"

namespace kiln::kernels {
namespace {

inline void quantize_activations_x86(const float* x, size_t ldx, size_t cols, size_t n_tokens, void* dst) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (size_t t = 0; t < n_tokens; ++t) {
        const act_row_out out = act_out_at(dst, cols, t);
        for (size_t b = 0; b < cols / activation_block; ++b) {
            const float* xb = x + t * ldx + b * activation_block;
            __m256 v[4];
            for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(xb + 8 * k);
            __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                                     _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            const float amax = _mm_cvtss_f32(m4);
            const float d = amax / 127.0f;
            const __m256 inv = _mm256_set1_ps(amax != 0.0f ? 1.0f / d : 0.0f);
            __m256i q[4];
            for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], inv));
            // q16 = x * (inv * 256): the scalar order of operations, so every ISA writes the same bytes
            const __m256 inv16 = _mm256_mul_ps(inv, _mm256_set1_ps(256.0f));
            for (int k = 0; k < 4; k += 2) {
                const __m256i h0 = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], inv16));
                const __m256i h1 = _mm256_cvtps_epi32(_mm256_mul_ps(v[k + 1], inv16));
                // packs interleaves the 128-bit lanes of its inputs: 0xd8 puts them back in order
                const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(h0, h1), 0xd8);
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.q16 + b * activation_block + 8 * k), packed);
            }
            const __m256i sum32 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
            // packs work per 128-bit lane: the permute restores element order
            const __m256i w01 = _mm256_packs_epi32(q[0], q[1]);
            const __m256i w23 = _mm256_packs_epi32(q[2], q[3]);
            const __m256i bytes = _mm256_packs_epi16(w01, w23);
            const __m256i ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.q + b * activation_block), ordered);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out.qp + paired_index(b, 0, cols / activation_block)),
                             _mm256_castsi256_si128(ordered));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out.qp + paired_index(b, 16, cols / activation_block)),
                             _mm256_extracti128_si256(ordered, 1));
            out.d[b] = d;
            out.ds[b] = d * float(hsum_i32(sum32));
        }
    }
}

}  // namespace
}  // namespace kiln::kernels
