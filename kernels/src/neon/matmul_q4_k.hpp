// NEON q4_k matmul kernel: one super-block per step; each sub-block is 16 bytes whose low
// nibbles are elements 0..15 and high nibbles 16..31; scales and mins apply 4 at a time.
#pragma once
#include "activations.hpp"
#include "kiln/quant/blocks.hpp"
#include "neon/int8_neon.hpp"

namespace kiln::kernels {
namespace {

struct q4_k_neon {
    template <int N>
    static void run(const uint8_t* row, size_t cols, const act_row* a, float* out) {
        const auto* blk = reinterpret_cast<const quant::q4_k_block*>(row);
        const size_t nb = cols / quant::q4_k_elems;
        const uint8x16_t low4 = vdupq_n_u8(0x0f);
        float32x4_t acc[N];
        for (int t = 0; t < N; ++t) acc[t] = vdupq_n_f32(0.0f);
        for (size_t b = 0; b < nb; ++b) {
            const quant::q4_k_block& sb = blk[b];
            int32x4_t v[N][8];  // per sub-block
            for (int j = 0; j < 8; ++j) {
                const uint8x16_t raw = vld1q_u8(sb.q + 16 * j);
                const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(raw, low4));
                const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
                for (int t = 0; t < N; ++t) v[t][j] = dot32(lo, hi, a[t].q + b * 256 + j * 32);
            }
            float32x4_t sc0, sc1, mn0, mn1;
            unpack6x8(sb.scales, sc0, sc1);
            unpack6x8(sb.scales + 6, mn0, mn1);
            const float d = f16_one(&sb.d), dmin = f16_one(&sb.dmin);
            sc0 = vmulq_n_f32(sc0, d), sc1 = vmulq_n_f32(sc1, d);
            mn0 = vmulq_n_f32(mn0, dmin), mn1 = vmulq_n_f32(mn1, dmin);
            for (int t = 0; t < N; ++t) {
                const float* da = a[t].d + b * 8;
                const float* ds = a[t].ds + b * 8;
                const float32x4_t s0 = vcvtq_f32_s32(lane_sums4(v[t][0], v[t][1], v[t][2], v[t][3]));
                const float32x4_t s1 = vcvtq_f32_s32(lane_sums4(v[t][4], v[t][5], v[t][6], v[t][7]));
                acc[t] = vfmaq_f32(acc[t], vmulq_f32(s0, vld1q_f32(da)), sc0);
                acc[t] = vfmaq_f32(acc[t], vmulq_f32(s1, vld1q_f32(da + 4)), sc1);
                acc[t] = vfmsq_f32(acc[t], mn0, vld1q_f32(ds));
                acc[t] = vfmsq_f32(acc[t], mn1, vld1q_f32(ds + 4));
            }
        }
        for (int t = 0; t < N; ++t) out[t] = vaddvq_f32(acc[t]);
    }
};

}  // namespace
}  // namespace kiln::kernels
