// x86 q8_0 matmul kernel: one grouped run of 8 blocks (blocks.hpp) per step against the int16
// activations (kernels.hpp), integer dots reduced to one lane per block so the run's 8 f16
// scales, one 16-byte load, apply at once. Blocks after the last run are whole blocks.
#pragma once
#include "activations.hpp"
#include "kiln/quant/blocks.hpp"
#include "x86/int8_avx2.hpp"

namespace kiln::kernels {
namespace {

struct q8_0_x86 {
    template <int N>
    static void run(const uint8_t* row, size_t cols, const act_row* a, float* out) {
        const auto* blk = reinterpret_cast<const quant::q8_0_block*>(row);  // whole blocks past the runs
        const size_t nb = cols / quant::q8_0_elems;
        constexpr size_t run_bytes = quant::block_group * sizeof(quant::q8_0_block);
        const __m256 q16_scale = _mm256_set1_ps(1.0f / 256.0f);
        __m256 acc[N];
        for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
        size_t b = 0;
        for (; b + 8 <= nb; b += 8) {
            const uint8_t* run = row + b / quant::block_group * run_bytes;
            const auto* codes = reinterpret_cast<const int8_t*>(run + 2 * quant::block_group);
            __m256i pairs[N][4];
            for (int p = 0; p < 4; ++p) {
                const s16_block w0 = widen_s8(codes + 64 * p), w1 = widen_s8(codes + 64 * p + 32);
                for (int t = 0; t < N; ++t) {
                    const int16_t* aq = a[t].q16 + (b + 2 * p) * 32;
                    pairs[t][p] = pair_sums(dot_s16(w0, aq), dot_s16(w1, aq + 32));
                }
            }
            const __m256 dw = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(run))), q16_scale);
            for (int t = 0; t < N; ++t) {
                const __m256 sums = _mm256_cvtepi32_ps(lane_sums8(pairs[t][0], pairs[t][1], pairs[t][2], pairs[t][3]));
                acc[t] = _mm256_fmadd_ps(sums, _mm256_mul_ps(dw, _mm256_loadu_ps(a[t].d + b)), acc[t]);
            }
        }
        float tail[N] = {};
        for (; b < nb; ++b) {
            const s16_block w = widen_s8(blk[b].q);
            const float dw = f16_one(&blk[b].d) * (1.0f / 256.0f);
            for (int t = 0; t < N; ++t) tail[t] += dw * a[t].d[b] * float(hsum_i32(dot_s16(w, a[t].q16 + b * 32)));
        }
        for (int t = 0; t < N; ++t) out[t] = hsum_f32(acc[t]) + tail[t];
    }
};

}  // namespace
}  // namespace kiln::kernels
