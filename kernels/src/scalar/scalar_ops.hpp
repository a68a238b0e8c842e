// Internal: the scalar reference kernels (plain C++, no intrinsics), gathered in scalar.cpp.
#pragma once
#include "kiln/kernels/kernels.hpp"

namespace kiln::kernels::scalar {

void quantize_activations(const float* x, size_t ldx, size_t cols, size_t n_tokens, void* dst);
void matmul_f32(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                float* y, size_t ldy);
void matmul_f16(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                float* y, size_t ldy);
void matmul_bf16(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                 float* y, size_t ldy);
void matmul_q8_0(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                 float* y, size_t ldy);
void matmul_q4_0(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                 float* y, size_t ldy);
void matmul_q4_k(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                 float* y, size_t ldy);

float dot(const float* a, const float* b, size_t n);
void rmsnorm(const float* x, const float* weight, float eps, float* out, size_t n);
void rope(float* x, size_t n_heads, size_t head_dim, const float* cos, const float* sin, rope_style style);
void swiglu(const float* gate, const float* up, float* out, size_t n);
void softmax(float* x, size_t n);
void add(const float* a, const float* b, float* out, size_t n);
void scale(const float* x, float factor, float* out, size_t n);
void f16_to_f32(const uint16_t* src, float* dst, size_t n);
void f32_to_f16(const float* src, uint16_t* dst, size_t n);
void attention(const attention_args& args);  // scalar/attention.cpp

}  // namespace kiln::kernels::scalar
