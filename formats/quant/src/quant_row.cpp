// quantize_row / dequantize_row: dispatch on the weight type, checking the block fit once.
#include <cstring>
#include <stdexcept>
#include <string>

#include "kiln/quant/quant.hpp"

namespace kiln::quant {
namespace {

size_t block_elems(tensor_type type) {
    switch (type) {
        case tensor_type::f32:
        case tensor_type::f16:
        case tensor_type::bf16: return 1;
        case tensor_type::q8_0: return q8_0_elems;
        case tensor_type::q4_0: return q4_0_elems;
        case tensor_type::q4_k: return q4_k_elems;
    }
    throw std::invalid_argument("quantize_row: unknown tensor type " + std::to_string(unsigned(type)));
}

void check_fit(tensor_type type, size_t n) {
    const size_t block = block_elems(type);
    if (n % block != 0)
        throw std::invalid_argument("quantize_row: row of " + std::to_string(n) +
                                    " elements is not a whole number of blocks of " + std::to_string(block));
}

}  // namespace

void quantize_row(tensor_type type, const float* src, void* dst, size_t n) {
    check_fit(type, n);
    switch (type) {
        case tensor_type::f32: return quantize_row_f32(src, dst, n);
        case tensor_type::f16: return quantize_row_f16(src, dst, n);
        case tensor_type::bf16: return quantize_row_bf16(src, dst, n);
        case tensor_type::q8_0: return quantize_row_q8_0(src, dst, n);
        case tensor_type::q4_0: return quantize_row_q4_0(src, dst, n);
        case tensor_type::q4_k: return quantize_row_q4_k(src, dst, n);
    }
}

void dequantize_row(tensor_type type, const void* src, float* dst, size_t n) {
    check_fit(type, n);
    switch (type) {
        case tensor_type::f32: return dequantize_row_f32(src, dst, n);
        case tensor_type::f16: return dequantize_row_f16(src, dst, n);
        case tensor_type::bf16: return dequantize_row_bf16(src, dst, n);
        case tensor_type::q8_0: return dequantize_row_q8_0(src, dst, n);
        case tensor_type::q4_0: return dequantize_row_q4_0(src, dst, n);
        case tensor_type::q4_k: return dequantize_row_q4_k(src, dst, n);
    }
}

void ungroup_row(tensor_type type, const void* src, void* dst, size_t n) {
    check_fit(type, n);
    if (type == tensor_type::q8_0) {
        auto* out = static_cast<q8_0_block*>(dst);
        for (size_t b = 0; b < n / q8_0_elems; ++b) out[b] = load_grouped<q8_0_block>(src, n / q8_0_elems, b);
    } else if (type == tensor_type::q4_0) {
        auto* out = static_cast<q4_0_block*>(dst);
        for (size_t b = 0; b < n / q4_0_elems; ++b) out[b] = load_grouped<q4_0_block>(src, n / q4_0_elems, b);
    } else {
        const size_t bytes = type == tensor_type::f32   ? 4 * n
                             : type == tensor_type::q4_k ? n / q4_k_elems * sizeof(q4_k_block)
                                                         : 2 * n;  // f16, bf16
        std::memcpy(dst, src, bytes);
    }
}

}  // namespace kiln::quant
