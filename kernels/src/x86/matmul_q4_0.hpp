// x86 q4_0 matmul kernel: nibbles used as unsigned codes 0..15 against signed activations;
// the -8 offset is folded in per block as 8 * d_a * sum(a_q), which the activation record
// carries, so the inner loop has no subtraction.
#pragma once
#include "activations.hpp"
#include "kiln/quant/blocks.hpp"
#include "x86/int8_avx2.hpp"

namespace kiln::kernels {
namespace {

struct q4_0_x86 {
    // Block layout: byte j = element j (low nibble) | element j + 16 (high nibble).
    static __m256i codes(const quant::q4_0_block& blk) {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.q));
        const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
        return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
    }

    template <int N>
    static void run(const uint8_t* row, size_t cols, const act_row* a, float* out) {
        const auto* blk = reinterpret_cast<const quant::q4_0_block*>(row);
        const size_t nb = cols / quant::q4_0_elems;
        const __m256 minus8 = _mm256_set1_ps(-8.0f);
        __m256 acc[N];
        for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
        size_t b = 0;
        for (; b + 8 <= nb; b += 8) {
            __m256i pairs[N][4];
            for (int p = 0; p < 4; ++p) {
                const __m256i w0 = codes(blk[b + 2 * p]), w1 = codes(blk[b + 2 * p + 1]);
                for (int t = 0; t < N; ++t) {
                    const int8_t* aq = a[t].q + (b + 2 * p) * 32;
                    pairs[t][p] = pair_sums(dot_u8s8(w0, load256(aq)), dot_u8s8(w1, load256(aq + 32)));
                }
            }
            const __m256 dw = load_f16x8_strided(reinterpret_cast<const uint8_t*>(&blk[b].d), sizeof(quant::q4_0_block));
            for (int t = 0; t < N; ++t) {
                const __m256 sums = _mm256_cvtepi32_ps(lane_sums8(pairs[t][0], pairs[t][1], pairs[t][2], pairs[t][3]));
                // d_a * sum(codes * a) - 8 * d_a * sum(a), per block
                const __m256 blocks = _mm256_fmadd_ps(sums, _mm256_loadu_ps(a[t].d + b),
                                                      _mm256_mul_ps(minus8, _mm256_loadu_ps(a[t].ds + b)));
                acc[t] = _mm256_fmadd_ps(blocks, dw, acc[t]);
            }
        }
        float tail[N] = {};
        for (; b < nb; ++b) {
            const __m256i w = codes(blk[b]);
            const float dw = f16_one(&blk[b].d);
            for (int t = 0; t < N; ++t) {
                const float isum = float(hsum_i32(dot_u8s8(w, load256(a[t].q + b * 32))));
                tail[t] += dw * (a[t].d[b] * isum - 8.0f * a[t].ds[b]);
            }
        }
        for (int t = 0; t < N; ++t) out[t] = hsum_f32(acc[t]) + tail[t];
    }
};

}  // namespace
}  // namespace kiln::kernels
