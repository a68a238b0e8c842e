// Reference q4_0: blocks of 32 4-bit values with one f16 scale, searched to minimise squared error.
#include <cmath>

#include "block_error.hpp"
#include "kiln/quant/quant.hpp"

namespace kiln::quant {
namespace {

int quantize_q4(float x, float inv) {
    const float q = std::nearbyint(x * inv) + 8.0f;
    return int(std::fmax(0.0f, std::fmin(15.0f, q)));
}

float block_error(const float* x, float d) { return block_sq_error(x, d, -8.0f, 7.0f); }

}  // namespace

void quantize_row_q4_0(const float* src, void* dst, size_t n) {
    const size_t nb = n / q4_0_elems;
    for (size_t b = 0; b < nb; ++b) {
        const float* x = src + b * q4_0_elems;
        // The signed extreme maps to -8, which uses the asymmetric code fully; a few slightly
        // smaller scales are then tried, since clipping the extreme can lower the total error.
        float extreme = 0.0f;
        for (size_t i = 0; i < q4_0_elems; ++i)
            if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
        uint16_t best = f32_to_f16(extreme / -8.0f);
        float best_err = block_error(x, f16_to_f32(best));
        for (int step = 1; step <= 8; ++step) {
            const uint16_t candidate = f32_to_f16(extreme / (-8.0f - 0.125f * float(step)));
            const float err = block_error(x, f16_to_f32(candidate));
            if (err < best_err) best_err = err, best = candidate;
        }
        const float d = f16_to_f32(best);
        const float inv = d != 0.0f ? 1.0f / d : 0.0f;
        q4_0_block block;
        block.d = best;
        for (size_t j = 0; j < q4_0_elems / 2; ++j)
            block.q[j] = uint8_t(quantize_q4(x[j], inv) | (quantize_q4(x[j + 16], inv) << 4));
        store_grouped(dst, nb, b, block);  // rows are grouped (blocks.hpp)
    }
}

void dequantize_row_q4_0(const void* src, float* dst, size_t n) {
    const size_t nb = n / q4_0_elems;
    for (size_t b = 0; b < nb; ++b) {
        const q4_0_block block = load_grouped<q4_0_block>(src, nb, b);
        const float d = f16_to_f32(block.d);
        float* out = dst + b * q4_0_elems;
        for (size_t j = 0; j < q4_0_elems / 2; ++j) {
            out[j] = d * float((block.q[j] & 15) - 8);
            out[j + 16] = d * float((block.q[j] >> 4) - 8);
        }
    }
}

}  // namespace kiln::quant
