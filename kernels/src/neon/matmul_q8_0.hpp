// NEON q8_0 matmul kernel against the int16 activations (kernels.hpp): half a grouped run
// (blocks.hpp) per step, lane totals gathered so its 4 contiguous scales apply at once.
#pragma once
#include "activations.hpp"
#include "kiln/quant/blocks.hpp"
#include "neon/int8_neon.hpp"

namespace kiln::kernels {
namespace {

struct q8_0_neon {
    template <int N>
    static void run(const uint8_t* row, size_t cols, const act_row* a, float* out) {
        const auto* blk = reinterpret_cast<const quant::q8_0_block*>(row);  // whole blocks past the runs
        const size_t nb = cols / quant::q8_0_elems;
        const quant::grouped_row<quant::q8_0_block> grouped{row, nb};
        float32x4_t acc[N];
        for (int t = 0; t < N; ++t) acc[t] = vdupq_n_f32(0.0f);
        size_t b = 0;
        for (; b < grouped.grouped_blocks(); b += 4) {  // half a grouped run (blocks.hpp) per step
            int32x4_t v[N][4];
            const auto* codes = reinterpret_cast<const int8_t*>(grouped.codes(b));
            for (int k = 0; k < 4; ++k) {
                const int8x16_t w0 = vld1q_s8(codes + 32 * k), w1 = vld1q_s8(codes + 32 * k + 16);
                for (int t = 0; t < N; ++t) v[t][k] = dot32_s16(w0, w1, a[t].q16 + (b + k) * 32);
            }
            const float32x4_t dw = load_f16x4(grouped.scale(b));
            for (int t = 0; t < N; ++t) {
                const float32x4_t sums = vcvtq_f32_s32(lane_sums4(v[t][0], v[t][1], v[t][2], v[t][3]));
                acc[t] = vfmaq_f32(acc[t], sums, vmulq_f32(vmulq_n_f32(dw, 1.0f / 256.0f), vld1q_f32(a[t].d + b)));
            }
        }
        float tail[N] = {};
        for (; b < nb; ++b) {
            const int8x16_t w0 = vld1q_s8(blk[b].q), w1 = vld1q_s8(blk[b].q + 16);
            const float dw = f16_one(&blk[b].d) * (1.0f / 256.0f);
            for (int t = 0; t < N; ++t)
                tail[t] += dw * a[t].d[b] * float(vaddvq_s32(dot32_s16(w0, w1, a[t].q16 + b * 32)));
        }
        for (int t = 0; t < N; ++t) out[t] = vaddvq_f32(acc[t]) + tail[t];
    }
};

}  // namespace
}  // namespace kiln::kernels
