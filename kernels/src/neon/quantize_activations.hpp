// NEON activation quantization, bit-identical to the scalar reference (vcvtnq rounds to
// nearest even like nearbyint; same IEEE multiply and divide).
#pragma once
#include "activations.hpp"
#include "neon/int8_neon.hpp"

namespace kiln::kernels {
namespace {

inline void quantize_activations_neon(const float* x, size_t ldx, size_t cols, size_t n_tokens, void* dst) {
    for (size_t t = 0; t < n_tokens; ++t) {
        const act_row_out out = act_out_at(dst, cols, t);
        for (size_t b = 0; b < cols / activation_block; ++b) {
            const float* xb = x + t * ldx + b * activation_block;
            float32x4_t v[8];
            float32x4_t m = vdupq_n_f32(0.0f);
            for (int k = 0; k < 8; ++k) v[k] = vld1q_f32(xb + 4 * k), m = vmaxq_f32(m, vabsq_f32(v[k]));
            const float amax = vmaxvq_f32(m);
            const float d = amax / 127.0f;
            const float inv = amax != 0.0f ? 1.0f / d : 0.0f;
            const float inv16 = inv * 256.0f;  // the scalar order of operations: identical bytes
            for (int k = 0; k < 8; k += 2) {
                const int32x4_t h0 = vcvtnq_s32_f32(vmulq_n_f32(v[k], inv16));
                const int32x4_t h1 = vcvtnq_s32_f32(vmulq_n_f32(v[k + 1], inv16));
                vst1q_s16(out.q16 + b * activation_block + 4 * k, vcombine_s16(vqmovn_s32(h0), vqmovn_s32(h1)));
            }
            int32x4_t sum = vdupq_n_s32(0);
            int16x8_t halves[4];
            for (int k = 0; k < 4; ++k) {
                const int32x4_t q0 = vcvtnq_s32_f32(vmulq_n_f32(v[2 * k], inv));
                const int32x4_t q1 = vcvtnq_s32_f32(vmulq_n_f32(v[2 * k + 1], inv));
                sum = vaddq_s32(sum, vaddq_s32(q0, q1));
                halves[k] = vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1));
            }
            const int8x16_t first = vcombine_s8(vqmovn_s16(halves[0]), vqmovn_s16(halves[1]));
            const int8x16_t second = vcombine_s8(vqmovn_s16(halves[2]), vqmovn_s16(halves[3]));
            vst1q_s8(out.q + b * activation_block, first);
            vst1q_s8(out.q + b * activation_block + 16, second);
            vst1q_s8(out.qp + paired_index(b, 0, cols / activation_block), first);
            vst1q_s8(out.qp + paired_index(b, 16, cols / activation_block), second);
            out.d[b] = d;
            out.ds[b] = d * float(vaddvq_s32(sum));
        }
    }
}

}  // namespace
}  // namespace kiln::kernels
