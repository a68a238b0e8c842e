// Internal: squared error of one block of 32 values at a scale, for the scale searches of the
// q8_0 and q4_0 quantizers (each tries a couple dozen scales per block).
#pragma once
#include <cstddef>

namespace kiln::quant {

// sum_i (x_i - d * clamp(round(x_i / d), lo, hi))^2 over 32 values. Rounds by adding 1.5 * 2^23
// (round to nearest even, like nearbyint, for |v| < 2^22) and keeps eight partial sums: plain
// arithmetic the compiler vectorizes without -ffast-math.
inline float block_sq_error(const float* x, float d, float lo, float hi) {
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    constexpr float round_magic = 12582912.0f;
    float lanes[8] = {};
    for (size_t i = 0; i < 32; i += 8)
        for (size_t k = 0; k < 8; ++k) {
            float q = (x[i + k] * inv + round_magic) - round_magic;
            q = q > hi ? hi : q;
            q = q < lo ? lo : q;
            const float e = x[i + k] - d * q;
            lanes[k] += e * e;
        }
    float err = 0.0f;
    for (float l : lanes) err += l;
    return err;
}

}  // namespace kiln::quant
