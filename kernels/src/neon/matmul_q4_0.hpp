// NEON q4_0 matmul kernel: codes 0..15 against signed activations, the -8 offset folded in per
// block from the activation record's d * sum(q). Half a grouped run (blocks.hpp) per step: 4
// contiguous scales and 4 blocks' codes; blocks after the last run are whole blocks.
#pragma once
#include "activations.hpp"
#include "kiln/quant/blocks.hpp"
#include "neon/int8_neon.hpp"

namespace kiln::kernels {
namespace {

struct q4_0_neon {
    template <int N>
    static void run(const uint8_t* row, size_t cols, const act_row* a, float* out) {
        const auto* blk = reinterpret_cast<const quant::q4_0_block*>(row);  // whole blocks past the runs
        const size_t nb = cols / quant::q4_0_elems;
        const quant::grouped_row<quant::q4_0_block> grouped{row, nb};
        const uint8x16_t low4 = vdupq_n_u8(0x0f);
        float32x4_t acc[N];
        for (int t = 0; t < N; ++t) acc[t] = vdupq_n_f32(0.0f);
        auto block_dot = [&](size_t block, int t, int8x16_t lo, int8x16_t hi) {
            return dot32(lo, hi, a[t].q + block * 32);
        };
        size_t b = 0;
        for (; b < grouped.grouped_blocks(); b += 4) {
            int32x4_t v[N][4];
            const uint8_t* codes = grouped.codes(b);
            for (int k = 0; k < 4; ++k) {
                const uint8x16_t raw = vld1q_u8(codes + 16 * k);
                // byte j = element j (low nibble) | element j + 16 (high nibble)
                const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(raw, low4));
                const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
                for (int t = 0; t < N; ++t) v[t][k] = block_dot(b + k, t, lo, hi);
            }
            const float32x4_t dw = load_f16x4(grouped.scale(b));
            for (int t = 0; t < N; ++t) {
                const float32x4_t sums = vcvtq_f32_s32(lane_sums4(v[t][0], v[t][1], v[t][2], v[t][3]));
                const float32x4_t offset = vmulq_n_f32(vld1q_f32(a[t].ds + b), -8.0f);
                acc[t] = vfmaq_f32(acc[t], vfmaq_f32(offset, sums, vld1q_f32(a[t].d + b)), dw);
            }
        }
        float tail[N] = {};
        for (; b < nb; ++b) {
            const uint8x16_t raw = vld1q_u8(blk[b].q);
            const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(raw, low4));
            const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
            const float dw = f16_one(&blk[b].d);
            for (int t = 0; t < N; ++t) {
                const float isum = float(vaddvq_s32(block_dot(b, t, lo, hi)));
                tail[t] += dw * (a[t].d[b] * isum - 8.0f * a[t].ds[b]);
            }
        }
        for (int t = 0; t < N; ++t) out[t] = vaddvq_f32(acc[t]) + tail[t];
    }
};

}  // namespace
}  // namespace kiln::kernels
