// GGML type table, f16/bf16 conversion, the 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0) and the dispatch of dequantize_ggml.
#include "kiln/formats/gguf_dequant.hpp"

#include <array>
#include <cmath>
#include <string>

#include "gguf_dequant_blocks.hpp"
#include "kiln/formats/error.hpp"

namespace kiln {
namespace {

struct type_entry {
    ggml_type type;
    ggml_type_info info;
};

// Block geometry of every type a GGUF file may hold, so that files with types kiln cannot decode
// still open for inspection and their tensor sizes still get checked.
constexpr std::array<type_entry, 31> type_table{{
    {ggml_type::f32, {"f32", 1, 4, true}},
    {ggml_type::f16, {"f16", 1, 2, true}},
    {ggml_type::q4_0, {"q4_0", 32, 18, true}},
    {ggml_type::q4_1, {"q4_1", 32, 20, true}},
    {ggml_type::q5_0, {"q5_0", 32, 22, true}},
    {ggml_type::q5_1, {"q5_1", 32, 24, true}},
    {ggml_type::q8_0, {"q8_0", 32, 34, true}},
    {ggml_type::q8_1, {"q8_1", 32, 36, false}},
    {ggml_type::q2_k, {"q2_k", 256, 84, true}},
    {ggml_type::q3_k, {"q3_k", 256, 110, true}},
    {ggml_type::q4_k, {"q4_k", 256, 144, true}},
    {ggml_type::q5_k, {"q5_k", 256, 176, true}},
    {ggml_type::q6_k, {"q6_k", 256, 210, true}},
    {ggml_type::q8_k, {"q8_k", 256, 292, false}},
    {ggml_type::iq2_xxs, {"iq2_xxs", 256, 66, false}},
    {ggml_type::iq2_xs, {"iq2_xs", 256, 74, false}},
    {ggml_type::iq3_xxs, {"iq3_xxs", 256, 98, false}},
    {ggml_type::iq1_s, {"iq1_s", 256, 50, false}},
    {ggml_type::iq4_nl, {"iq4_nl", 32, 18, false}},
    {ggml_type::iq3_s, {"iq3_s", 256, 110, false}},
    {ggml_type::iq2_s, {"iq2_s", 256, 82, false}},
    {ggml_type::iq4_xs, {"iq4_xs", 256, 136, false}},
    {ggml_type::i8, {"i8", 1, 1, false}},
    {ggml_type::i16, {"i16", 1, 2, false}},
    {ggml_type::i32, {"i32", 1, 4, false}},
    {ggml_type::i64, {"i64", 1, 8, false}},
    {ggml_type::f64, {"f64", 1, 8, false}},
    {ggml_type::iq1_m, {"iq1_m", 256, 56, false}},
    {ggml_type::bf16, {"bf16", 1, 2, true}},
    {ggml_type::tq1_0, {"tq1_0", 256, 54, false}},
    {ggml_type::tq2_0, {"tq2_0", 256, 66, false}},
}};

using block_decoder = void (*)(const uint8_t*, float*);

block_decoder decoder_for(ggml_type type) {
    switch (type) {
        case ggml_type::q4_0: return detail::decode_q4_0_block;
        case ggml_type::q4_1: return detail::decode_q4_1_block;
        case ggml_type::q5_0: return detail::decode_q5_0_block;
        case ggml_type::q5_1: return detail::decode_q5_1_block;
        case ggml_type::q8_0: return detail::decode_q8_0_block;
        case ggml_type::q2_k: return detail::decode_q2_k_block;
        case ggml_type::q3_k: return detail::decode_q3_k_block;
        case ggml_type::q4_k: return detail::decode_q4_k_block;
        case ggml_type::q5_k: return detail::decode_q5_k_block;
        case ggml_type::q6_k: return detail::decode_q6_k_block;
        default: return nullptr;
    }
}

}  // namespace

std::optional<ggml_type_info> ggml_type_lookup(uint32_t type) {
    for (const auto& e : type_table)
        if (static_cast<uint32_t>(e.type) == type) return e.info;
    return std::nullopt;
}

float gguf_f16_to_f32(uint16_t half) {
    const uint32_t sign = static_cast<uint32_t>(half >> 15) << 31;
    const uint32_t exponent = (half >> 10) & 0x1f;
    const uint32_t mantissa = half & 0x3ff;
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24 is exact in binary32.
        float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));        // rebias 15 -> 127
}

void dequantize_ggml(ggml_type type, std::span<const std::byte> blocks, std::span<float> out) {
    auto info = ggml_type_lookup(static_cast<uint32_t>(type));
    if (!info) throw error("dequantize_ggml: unknown GGML type " + std::to_string(static_cast<uint32_t>(type)));
    if (!info->decodable) throw error("dequantize_ggml: GGML type " + std::string(info->name) + " is not supported");
    const size_t n = out.size();
    if (n % info->block_elems != 0 || blocks.size() != n / info->block_elems * info->block_bytes)
        throw error("dequantize_ggml: " + std::to_string(blocks.size()) + " bytes do not hold " + std::to_string(n) +
                    " elements of " + std::string(info->name));
    const auto* src = reinterpret_cast<const uint8_t*>(blocks.data());
    switch (type) {
        case ggml_type::f32:
            std::memcpy(out.data(), src, n * 4);
            return;
        case ggml_type::f16:
            for (size_t i = 0; i < n; ++i) out[i] = detail::load_f16(src + 2 * i);
            return;
        case ggml_type::bf16:
            for (size_t i = 0; i < n; ++i) {
                uint16_t v;
                std::memcpy(&v, src + 2 * i, 2);
                out[i] = gguf_bf16_to_f32(v);
            }
            return;
        default: break;
    }
    block_decoder decode = decoder_for(type);
    for (size_t b = 0; b < n / info->block_elems; ++b)
        decode(src + b * info->block_bytes, out.data() + b * info->block_elems);
}

namespace detail {

// Q4_0 (18 bytes): f16 d, then 16 bytes; byte j holds element j (low nibble) and j+16 (high
// nibble); x = d * (q - 8).
void decode_q4_0_block(const uint8_t* block, float* out) {
    const float d = load_f16(block);
    const uint8_t* qs = block + 2;
    for (int j = 0; j < 16; ++j) {
        out[j] = d * static_cast<float>((qs[j] & 0x0f) - 8);
        out[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
    }
}

// Q4_1 (20 bytes): f16 d, f16 m, then nibbles as Q4_0; x = d * q + m.
void decode_q4_1_block(const uint8_t* block, float* out) {
    const float d = load_f16(block), m = load_f16(block + 2);
    const uint8_t* qs = block + 4;
    for (int j = 0; j < 16; ++j) {
        out[j] = d * static_cast<float>(qs[j] & 0x0f) + m;
        out[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
    }
}

// The fifth bits of the Q5 formats: a little-endian u32 whose bit i belongs to element i.
static uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Q5_0 (22 bytes): f16 d, u32 high bits, 16 bytes of nibbles as Q4_0; x = d * (q - 16).
void decode_q5_0_block(const uint8_t* block, float* out) {
    const float d = load_f16(block);
    const uint32_t high = load_u32(block + 2);
    const uint8_t* qs = block + 6;
    for (int j = 0; j < 16; ++j) {
        int lo = (qs[j] & 0x0f) | static_cast<int>(((high >> j) & 1) << 4);
        int hi = (qs[j] >> 4) | static_cast<int>(((high >> (j + 16)) & 1) << 4);
        out[j] = d * static_cast<float>(lo - 16);
        out[j + 16] = d * static_cast<float>(hi - 16);
    }
}

// Q5_1 (24 bytes): f16 d, f16 m, u32 high bits, nibbles; x = d * q + m.
void decode_q5_1_block(const uint8_t* block, float* out) {
    const float d = load_f16(block), m = load_f16(block + 2);
    const uint32_t high = load_u32(block + 4);
    const uint8_t* qs = block + 8;
    for (int j = 0; j < 16; ++j) {
        int lo = (qs[j] & 0x0f) | static_cast<int>(((high >> j) & 1) << 4);
        int hi = (qs[j] >> 4) | static_cast<int>(((high >> (j + 16)) & 1) << 4);
        out[j] = d * static_cast<float>(lo) + m;
        out[j + 16] = d * static_cast<float>(hi) + m;
    }
}

// Q8_0 (34 bytes): f16 d, 32 x int8; x = d * q.
void decode_q8_0_block(const uint8_t* block, float* out) {
    const float d = load_f16(block);
    for (int j = 0; j < 32; ++j) out[j] = d * static_cast<float>(static_cast<int8_t>(block[2 + j]));
}

}  // namespace detail
}  // namespace kiln
