// Scalar conversions between f32 and the 16-bit float types f16 (IEEE binary16) and bf16.
#pragma once
#include <cstdint>

namespace kiln::quant {

// Round to nearest, ties to even; subnormals, infinities and NaN (kept quiet) handled exactly.
uint16_t f32_to_f16(float value);
float f16_to_f32(uint16_t bits);

// bf16 is the upper half of a binary32: the conversion back is exact, the one there rounds to
// nearest even (NaN stays NaN, made quiet).
uint16_t f32_to_bf16(float value);
float bf16_to_f32(uint16_t bits);

}  // namespace kiln::quant
