// Scalar f32 <-> f16 / bf16 conversions (round to nearest even), the reference for the kernels.
#include "kiln/quant/half.hpp"

#include <cstring>

namespace kiln::quant {
namespace {

uint32_t bits_of(float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

float float_of(uint32_t bits) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

// Shifts right by `shift` (1..31) rounding to nearest, ties to even.
uint32_t shift_round_even(uint32_t value, unsigned shift) {
    const uint32_t kept = value >> shift;
    const uint32_t rest = value & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    return kept + ((rest > half || (rest == half && (kept & 1))) ? 1 : 0);
}

}  // namespace

uint16_t f32_to_f16(float value) {
    const uint32_t bits = bits_of(value);
    const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
    const uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude >= 0x7f800000u) {  // inf or NaN; a NaN keeps its top payload bits, made quiet
        if (magnitude == 0x7f800000u) return sign | 0x7c00u;
        return uint16_t(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
    }
    // 65520 is the midpoint between the largest f16 (65504) and 2^16: it and above round to inf.
    if (magnitude >= 0x477ff000u) return sign | 0x7c00u;
    const int exponent = int(magnitude >> 23);
    if (exponent >= 113) {  // normal f16: rebias 127 -> 15; a mantissa carry bumps the exponent
        const uint32_t rebased = magnitude - (112u << 23);
        return uint16_t(sign | shift_round_even(rebased, 13));
    }
    // Subnormal f16 (unit 2^-24): the value is mantissa * 2^(exponent - 150).
    const unsigned shift = unsigned(126 - exponent);
    if (exponent == 0 || shift > 25) return sign;  // below a quarter of the smallest subnormal
    const uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    return uint16_t(sign | shift_round_even(mantissa, shift));
}

float f16_to_f32(uint16_t bits) {
    const uint32_t sign = uint32_t(bits & 0x8000u) << 16;
    const uint32_t exponent = (bits >> 10) & 0x1fu;
    const uint32_t mantissa = bits & 0x3ffu;
    if (exponent == 0) {
        // zero or subnormal: mantissa * 2^-24 is exact in f32
        const float magnitude = float(mantissa) * 5.9604644775390625e-8f;
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 31) return float_of(sign | 0x7f800000u | (mantissa << 13));
    return float_of(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t f32_to_bf16(float value) {
    const uint32_t bits = bits_of(value);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40u);
    // Adding 0x7fff plus the kept lowest bit rounds to nearest even; overflow carries into inf.
    return uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

float bf16_to_f32(uint16_t bits) { return float_of(uint32_t(bits) << 16); }

}  // namespace kiln::quant
