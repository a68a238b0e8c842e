// Reference rows of the plain float types f32, f16 and bf16.
#include <cstring>

#include "kiln/quant/quant.hpp"

namespace kiln::quant {

void quantize_row_f32(const float* src, void* dst, size_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void dequantize_row_f32(const void* src, float* dst, size_t n) { std::memcpy(dst, src, n * sizeof(float)); }

void quantize_row_f16(const float* src, void* dst, size_t n) {
    auto* out = static_cast<uint16_t*>(dst);
    for (size_t i = 0; i < n; ++i) out[i] = f32_to_f16(src[i]);
}

void dequantize_row_f16(const void* src, float* dst, size_t n) {
    const auto* in = static_cast<const uint16_t*>(src);
    for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(in[i]);
}

void quantize_row_bf16(const float* src, void* dst, size_t n) {
    auto* out = static_cast<uint16_t*>(dst);
    for (size_t i = 0; i < n; ++i) out[i] = f32_to_bf16(src[i]);
}

void dequantize_row_bf16(const void* src, float* dst, size_t n) {
    const auto* in = static_cast<const uint16_t*>(src);
    for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(in[i]);
}

}  // namespace kiln::quant
