// Internal: views of one token's quantized activation record (layout in kernels.hpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kiln/kernels/kernels.hpp"

namespace kiln::kernels {
namespace {  // each ISA's translation unit keeps its own copy (see the ODR note in NOTES.md)

struct act_row {
    const int8_t* q;   // cols values
    const float* d;    // cols / 32 scales
    const float* ds;   // cols / 32 scale * sum(q)
};

struct act_row_out {
    int8_t* q;
    float* d;
    float* ds;
};

inline act_row act_at(const void* x, size_t cols, size_t token) {
    const auto* base = static_cast<const uint8_t*>(x) + token * quantized_row_bytes(cols);
    const auto* d = reinterpret_cast<const float*>(base + cols);
    return {reinterpret_cast<const int8_t*>(base), d, d + cols / activation_block};
}

inline act_row_out act_out_at(void* x, size_t cols, size_t token) {
    auto* base = static_cast<uint8_t*>(x) + token * quantized_row_bytes(cols);
    auto* d = reinterpret_cast<float*>(base + cols);
    return {reinterpret_cast<int8_t*>(base), d, d + cols / activation_block};
}

}  // namespace
}  // namespace kiln::kernels
