// Per-block decoders of the GGML quantized formats, shared by the two dequantizer files.
// Each reads exactly one block (its size in ggml_type_lookup) and writes block_elems floats.
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>

#include "kiln/formats/gguf_dequant.hpp"

namespace kiln::detail {

static_assert(std::endian::native == std::endian::little, "GGUF blocks are decoded in place: little-endian hosts only");

inline float load_f16(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return gguf_f16_to_f32(h);
}

void decode_q4_0_block(const uint8_t* block, float* out);
void decode_q4_1_block(const uint8_t* block, float* out);
void decode_q5_0_block(const uint8_t* block, float* out);
void decode_q5_1_block(const uint8_t* block, float* out);
void decode_q8_0_block(const uint8_t* block, float* out);
void decode_q2_k_block(const uint8_t* block, float* out);
void decode_q3_k_block(const uint8_t* block, float* out);
void decode_q4_k_block(const uint8_t* block, float* out);
void decode_q5_k_block(const uint8_t* block, float* out);
void decode_q6_k_block(const uint8_t* block, float* out);

}  // namespace kiln::detail
