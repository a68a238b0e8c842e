// Scalar reference of the float kernels: element-wise ops, norms, RoPE and float matmuls.
#include <cmath>

#include "kiln/quant/half.hpp"
#include "scalar/scalar_ops.hpp"

namespace kiln::kernels::scalar {
namespace {

template <typename Load>
void matmul_float(const Load& load_weight, size_t row_begin, size_t row_end, size_t cols, const float* x,
                  size_t n_tokens, float* y, size_t ldy) {
    for (size_t t = 0; t < n_tokens; ++t)
        for (size_t r = row_begin; r < row_end; ++r) {
            float sum = 0.0f;
            for (size_t c = 0; c < cols; ++c) sum += load_weight(r * cols + c) * x[t * cols + c];
            y[t * ldy + r] = sum;
        }
}

}  // namespace

void matmul_f32(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                float* y, size_t ldy) {
    const auto* weights = static_cast<const float*>(w);
    matmul_float([weights](size_t i) { return weights[i]; }, row_begin, row_end, cols,
                 static_cast<const float*>(x), n_tokens, y, ldy);
}

void matmul_f16(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                float* y, size_t ldy) {
    const auto* weights = static_cast<const uint16_t*>(w);
    matmul_float([weights](size_t i) { return quant::f16_to_f32(weights[i]); }, row_begin, row_end, cols,
                 static_cast<const float*>(x), n_tokens, y, ldy);
}

void matmul_bf16(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                 float* y, size_t ldy) {
    const auto* weights = static_cast<const uint16_t*>(w);
    matmul_float([weights](size_t i) { return quant::bf16_to_f32(weights[i]); }, row_begin, row_end, cols,
                 static_cast<const float*>(x), n_tokens, y, ldy);
}

float dot(const float* a, const float* b, size_t n) {
    float sum = 0.0f;
    for (size_t i = 0; i < n; ++i) sum += a[i] * b[i];
    return sum;
}

void rmsnorm(const float* x, const float* weight, float eps, float* out, size_t n) {
    float sum = 0.0f;
    for (size_t i = 0; i < n; ++i) sum += x[i] * x[i];
    const float inv = 1.0f / std::sqrt(sum / float(n) + eps);
    for (size_t i = 0; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

void rope(float* x, size_t n_heads, size_t head_dim, const float* cos, const float* sin, rope_style style) {
    const size_t half = head_dim / 2;
    // Pair i of a head is (first, first + stride).
    const size_t stride = style == rope_style::neox ? half : 1;
    for (size_t h = 0; h < n_heads; ++h) {
        float* head = x + h * head_dim;
        for (size_t i = 0; i < half; ++i) {
            const size_t first = style == rope_style::neox ? i : 2 * i;
            const float a = head[first], b = head[first + stride];
            head[first] = a * cos[i] - b * sin[i];
            head[first + stride] = a * sin[i] + b * cos[i];
        }
    }
}

void swiglu(const float* gate, const float* up, float* out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void softmax(float* x, size_t n) {
    float max = x[0];
    for (size_t i = 1; i < n; ++i) max = std::fmax(max, x[i]);
    float sum = 0.0f;
    for (size_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
    const float inv = 1.0f / sum;
    for (size_t i = 0; i < n; ++i) x[i] *= inv;
}

void add(const float* a, const float* b, float* out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void scale(const float* x, float factor, float* out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = x[i] * factor;
}

void f16_to_f32(const uint16_t* src, float* dst, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = quant::f16_to_f32(src[i]);
}

void f32_to_f16(const float* src, uint16_t* dst, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = quant::f32_to_f16(src[i]);
}

}  // namespace kiln::kernels::scalar
