// Reference q8_0: blocks of 32 int8 with one f16 scale chosen from the block's largest magnitude.
#include <cmath>

#include "kiln/quant/quant.hpp"

namespace kiln::quant {

void quantize_row_q8_0(const float* src, void* dst, size_t n) {
    auto* blocks = static_cast<q8_0_block*>(dst);
    for (size_t b = 0; b < n / q8_0_elems; ++b) {
        const float* x = src + b * q8_0_elems;
        float amax = 0.0f;
        for (size_t i = 0; i < q8_0_elems; ++i) amax = std::fmax(amax, std::fabs(x[i]));
        // Quantize with the f16-rounded scale, the one dequantization will use.
        const uint16_t d16 = f32_to_f16(amax / 127.0f);
        const float d = f16_to_f32(d16);
        const float inv = d != 0.0f ? 1.0f / d : 0.0f;
        blocks[b].d = d16;
        for (size_t i = 0; i < q8_0_elems; ++i) {
            const float q = std::nearbyint(x[i] * inv);
            blocks[b].q[i] = int8_t(std::fmax(-127.0f, std::fmin(127.0f, q)));
        }
    }
}

void dequantize_row_q8_0(const void* src, float* dst, size_t n) {
    const auto* blocks = static_cast<const q8_0_block*>(src);
    for (size_t b = 0; b < n / q8_0_elems; ++b) {
        const float d = f16_to_f32(blocks[b].d);
        for (size_t i = 0; i < q8_0_elems; ++i) dst[b * q8_0_elems + i] = d * float(blocks[b].q[i]);
    }
}

}  // namespace kiln::quant
