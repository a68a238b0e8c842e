// NEON integer helpers for the block kernels: sdot (vdotq_s32) when the target has the dot
// product extension, a widening multiply + pairwise-add fallback otherwise.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace kiln::kernels {
namespace {

// acc + the sums of 4 adjacent int8 products per lane (without sdot the grouping of products
// into lanes differs, the lane total does not).
inline int32x4_t dot_s8(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    const int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    const int16x8_t hi = vmull_high_s8(a, b);
    return vpadalq_s16(vpadalq_s16(acc, lo), hi);
#endif
}

// 32 weights (two registers) against 32 activations.
inline int32x4_t dot32(int8x16_t w0, int8x16_t w1, const int8_t* a) {
    return dot_s8(dot_s8(vdupq_n_s32(0), w0, vld1q_s8(a)), w1, vld1q_s8(a + 16));
}

// 32 int8 weights (two registers) against 32 int16 activations: widening multiply-adds, the
// q8_0 x int16 product of kernels.hpp (|w| <= 127, |a| <= 32512: no lane overflows).
inline int32x4_t dot32_s16(int8x16_t w0, int8x16_t w1, const int16_t* a) {
    int32x4_t acc = vdupq_n_s32(0);
    const int16x8_t w[4] = {vmovl_s8(vget_low_s8(w0)), vmovl_high_s8(w0), vmovl_s8(vget_low_s8(w1)),
                            vmovl_high_s8(w1)};
    for (int k = 0; k < 4; ++k) {
        const int16x8_t x = vld1q_s16(a + 8 * k);
        acc = vmlal_s16(acc, vget_low_s16(w[k]), vget_low_s16(x));
        acc = vmlal_high_s16(acc, w[k], x);
    }
    return acc;
}

// Four per-block vectors -> one vector whose lane k is the total of vector k.
inline int32x4_t lane_sums4(int32x4_t v0, int32x4_t v1, int32x4_t v2, int32x4_t v3) {
    return vpaddq_s32(vpaddq_s32(v0, v1), vpaddq_s32(v2, v3));
}

// Four contiguous f16 values (a grouped run's scales) -> 4 floats.
inline float32x4_t load_f16x4(const uint8_t* p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p))));
}

inline float f16_one(const void* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

// The 8 six-bit fields of a 48-bit little-endian group as two vectors of 4 floats.
inline void unpack6x8(const uint8_t* packed, float32x4_t& f0123, float32x4_t& f4567) {
    uint64_t bits = 0;
    std::memcpy(&bits, packed, 6);
    uint32_t fields[8];
    for (unsigned j = 0; j < 8; ++j) fields[j] = uint32_t(bits >> (6 * j)) & 63u;
    f0123 = vcvtq_f32_u32(vld1q_u32(fields));
    f4567 = vcvtq_f32_u32(vld1q_u32(fields + 4));
}

}  // namespace
}  // namespace kiln::kernels
