// GGML tensor element types as numbered in GGUF files, their block geometry, and decoding of
// the common ones to f32 (F32, F16, BF16, Q4_0/1, Q5_0/1, Q8_0 and the K-quants Q2_K..Q6_K).
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace kiln {

// Values are GGUF's on-disk numbers; gaps are types that ggml retired.
enum class ggml_type : uint32_t {
    f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9,
    q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15,
    iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22,
    iq4_xs = 23, i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30,
    tq1_0 = 34, tq2_0 = 35,
};

struct ggml_type_info {
    std::string_view name;  // lower case, as kiln shows source types ("q4_k")
    uint32_t block_elems;   // elements per block (1 for plain types)
    uint32_t block_bytes;   // bytes per block
    bool decodable;         // dequantize_ggml handles it
};

// nullopt for a number that is no known GGML type (a file from the future, or corrupt).
std::optional<ggml_type_info> ggml_type_lookup(uint32_t type);

// Decodes n_elements values of `type` from `blocks` into `out`. n_elements must be a whole number
// of blocks, blocks.size() exactly the bytes they take and out.size() == n_elements; throws
// kiln::error otherwise or when the type is not decodable.
void dequantize_ggml(ggml_type type, std::span<const std::byte> blocks, std::span<float> out);

// IEEE binary16 and bfloat16 to binary32, exact (subnormals, infinities and NaN included).
// (Prefixed so they cannot collide with the kernels' own conversions.)
float gguf_f16_to_f32(uint16_t half);
inline float gguf_bf16_to_f32(uint16_t value) { return std::bit_cast<float>(static_cast<uint32_t>(value) << 16); }

}  // namespace kiln
