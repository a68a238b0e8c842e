// x86 q4_k matmul kernel: one super-block (8 sub-blocks) per step. A 32-byte load holds two
// sub-blocks; their low nibbles (elements 0..15) and high nibbles (16..31) meet the activation
// record's q_paired copy with no shuffle. Sub-block scales and mins apply 8 at a time.
#pragma once
#include "activations.hpp"
#include "kiln/quant/blocks.hpp"
#include "x86/int8_avx2.hpp"

namespace kiln::kernels {
namespace {

struct q4_k_x86 {
    template <int N>
    static void run(const uint8_t* row, size_t cols, const act_row* a, float* out) {
        const auto* blk = reinterpret_cast<const quant::q4_k_block*>(row);
        const size_t nb = cols / quant::q4_k_elems;
        const __m256i low4 = _mm256_set1_epi8(0x0f);
        // hadd leaves lanes as sub-blocks [0 2 4 6 | 1 3 5 7]: this puts them back in order.
        const __m256i block_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        __m256 acc[N];
        for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
        for (size_t b = 0; b < nb; ++b) {
            const quant::q4_k_block& sb = blk[b];
            __m256i pairs[N][4];
            for (int g = 0; g < 4; ++g) {
                const __m256i raw = load256(sb.q + 32 * g);
                const __m256i lo = _mm256_and_si256(raw, low4);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
                for (int t = 0; t < N; ++t) {
                    const int8_t* paired = a[t].qp + b * 256 + g * 64;
                    pairs[t][g] = dot_u4s8_pair(lo, load256(paired), hi, load256(paired + 32));
                }
            }
            // Reading 8 bytes at scales + 6 runs 2 bytes into q: still inside the block.
            const __m256 scale = _mm256_mul_ps(unpack6x8(sb.scales), _mm256_set1_ps(f16_one(&sb.d)));
            const __m256 min = _mm256_mul_ps(unpack6x8(sb.scales + 6), _mm256_set1_ps(f16_one(&sb.dmin)));
            for (int t = 0; t < N; ++t) {
                const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(pairs[t][0], pairs[t][1]),
                                                    _mm256_hadd_epi32(pairs[t][2], pairs[t][3]));
                const __m256 sums = _mm256_cvtepi32_ps(_mm256_permutevar8x32_epi32(h, block_order));
                const __m256 with_da = _mm256_mul_ps(sums, _mm256_loadu_ps(a[t].d + b * 8));
                acc[t] = _mm256_fmadd_ps(with_da, scale, acc[t]);
                acc[t] = _mm256_fnmadd_ps(min, _mm256_loadu_ps(a[t].ds + b * 8), acc[t]);
            }
        }
        for (int t = 0; t < N; ++t) out[t] = hsum_f32(acc[t]);
    }
};

}  // namespace
}  // namespace kiln::kernels
