// Reference (scalar) quantization of rows of f32 into the .kiln weight types, and back.
#pragma once
#include <cstddef>

#include "kiln/formats/tensor_type.hpp"
#include "kiln/quant/blocks.hpp"
#include "kiln/quant/half.hpp"

namespace kiln::quant {

// n is the number of elements; for block types it must be a multiple of the block size
// (32, or 256 for q4_k), otherwise std::invalid_argument. dst holds row_bytes(type, n) bytes.
void quantize_row(tensor_type type, const float* src, void* dst, size_t n);
void dequantize_row(tensor_type type, const void* src, float* dst, size_t n);
// A row as whole blocks one after another (the plain layout, GGUF's block order): q8_0 and q4_0
// rows are stored grouped (blocks.hpp) and are re-ordered; other types are copied. For code
// that keeps its own plain-block kernels (the CUDA backend).
void ungroup_row(tensor_type type, const void* src, void* dst, size_t n);

// Per type (same contracts).
void quantize_row_f32(const float* src, void* dst, size_t n);
void dequantize_row_f32(const void* src, float* dst, size_t n);
void quantize_row_f16(const float* src, void* dst, size_t n);
void dequantize_row_f16(const void* src, float* dst, size_t n);
void quantize_row_bf16(const float* src, void* dst, size_t n);
void dequantize_row_bf16(const void* src, float* dst, size_t n);
void quantize_row_q8_0(const float* src, void* dst, size_t n);
void dequantize_row_q8_0(const void* src, float* dst, size_t n);
void quantize_row_q4_0(const float* src, void* dst, size_t n);
void dequantize_row_q4_0(const void* src, float* dst, size_t n);
void quantize_row_q4_k(const float* src, void* dst, size_t n);
void dequantize_row_q4_k(const void* src, float* dst, size_t n);

}  // namespace kiln::quant
