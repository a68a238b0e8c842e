// Internal: views of one token's quantized activation record (layout in kernels.hpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kiln/kernels/kernels.hpp"

namespace kiln::kernels {
namespace {  // each ISA's translation unit keeps its own copy (see the ODR note in NOTES.md)

struct act_row {
    const int8_t* q;   // cols values
    const int8_t* qp;  // cols values, block pairs split in halves (kernels.hpp)
    const int16_t* q16;  // cols values to 16 bits, scale d / 256
    const float* d;    // cols / 32 scales
    const float* ds;   // cols / 32 scale * sum(q)
};

struct act_row_out {
    int8_t* q;
    int8_t* qp;
    int16_t* q16;
    float* d;
    float* ds;
};

inline act_row act_at(const void* x, size_t cols, size_t token) {
    const auto* base = static_cast<const uint8_t*>(x) + token * quantized_row_bytes(cols);
    const auto* d = reinterpret_cast<const float*>(base + 4 * cols);
    return {reinterpret_cast<const int8_t*>(base), reinterpret_cast<const int8_t*>(base + cols),
            reinterpret_cast<const int16_t*>(base + 2 * cols), d, d + cols / activation_block};
}

inline act_row_out act_out_at(void* x, size_t cols, size_t token) {
    auto* base = static_cast<uint8_t*>(x) + token * quantized_row_bytes(cols);
    auto* d = reinterpret_cast<float*>(base + 4 * cols);
    return {reinterpret_cast<int8_t*>(base), reinterpret_cast<int8_t*>(base + cols),
            reinterpret_cast<int16_t*>(base + 2 * cols), d, d + cols / activation_block};
}

// Where element i (0..31) of block b goes in q_paired.
inline size_t paired_index(size_t b, size_t i, size_t n_blocks) {
    if (b + 1 == n_blocks && n_blocks % 2 == 1) return b * activation_block + i;  // odd last block
    return (b & ~size_t(1)) * activation_block + (i >= 16 ? 32 : 0) + (b & 1) * 16 + (i & 15);
}

}  // namespace
}  // namespace kiln::kernels
