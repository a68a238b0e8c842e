// Float kernels written once over xsimd::batch<float, Arch>; each ISA's .cpp instantiates them.
// Requires half_io<Arch> (f16/bf16 loads and stores) to be specialised before inclusion.
#pragma once
#include <xsimd/xsimd.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kiln/kernels/kernels.hpp"
#include "kiln/quant/half.hpp"

namespace kiln::kernels {
namespace {  // one copy per ISA translation unit: no inline function shared across -m flags

template <class Arch>
struct half_io;  // load_f16 / store_f16 / load_bf16 / load_i8 (int8 to float) of one batch, per ISA

template <class Arch>
using fbatch = xsimd::batch<float, Arch>;

template <class Arch>
float simd_dot(const float* a, const float* b, size_t n) {
    constexpr size_t w = fbatch<Arch>::size;
    fbatch<Arch> acc0(0.0f), acc1(0.0f), acc2(0.0f), acc3(0.0f);  // four chains hide FMA latency
    size_t i = 0;
    for (; i + 4 * w <= n; i += 4 * w) {
        acc0 = xsimd::fma(fbatch<Arch>::load_unaligned(a + i), fbatch<Arch>::load_unaligned(b + i), acc0);
        acc1 = xsimd::fma(fbatch<Arch>::load_unaligned(a + i + w), fbatch<Arch>::load_unaligned(b + i + w), acc1);
        acc2 = xsimd::fma(fbatch<Arch>::load_unaligned(a + i + 2 * w), fbatch<Arch>::load_unaligned(b + i + 2 * w), acc2);
        acc3 = xsimd::fma(fbatch<Arch>::load_unaligned(a + i + 3 * w), fbatch<Arch>::load_unaligned(b + i + 3 * w), acc3);
    }
    for (; i + w <= n; i += w)
        acc0 = xsimd::fma(fbatch<Arch>::load_unaligned(a + i), fbatch<Arch>::load_unaligned(b + i), acc0);
    float sum = xsimd::hadd((acc0 + acc1) + (acc2 + acc3));
    for (; i < n; ++i) sum += a[i] * b[i];
    return sum;
}

// Weight element loaders for the float matmul: one batch and one scalar at an element index.
template <class Arch>
struct f32_weights {
    const float* w;
    fbatch<Arch> batch(size_t i) const { return fbatch<Arch>::load_unaligned(w + i); }
    float one(size_t i) const { return w[i]; }
};
template <class Arch>
struct f16_weights {
    const uint16_t* w;
    fbatch<Arch> batch(size_t i) const { return half_io<Arch>::load_f16(w + i); }
    float one(size_t i) const { return quant::f16_to_f32(w[i]); }
};
template <class Arch>
struct bf16_weights {
    const uint16_t* w;
    fbatch<Arch> batch(size_t i) const { return half_io<Arch>::load_bf16(w + i); }
    float one(size_t i) const { return quant::bf16_to_f32(w[i]); }
};

// One weight row against N tokens: each weight batch is converted once and used N times.
template <class Arch, int N, class Weights>
void float_row_tile(const Weights& row, size_t cols, const float* x, float* out) {
    constexpr size_t w = fbatch<Arch>::size;
    fbatch<Arch> acc[N][2];
    for (int t = 0; t < N; ++t) acc[t][0] = acc[t][1] = fbatch<Arch>(0.0f);
    size_t i = 0;
    for (; i + 2 * w <= cols; i += 2 * w) {
        const fbatch<Arch> w0 = row.batch(i), w1 = row.batch(i + w);
        for (int t = 0; t < N; ++t) {
            acc[t][0] = xsimd::fma(w0, fbatch<Arch>::load_unaligned(x + t * cols + i), acc[t][0]);
            acc[t][1] = xsimd::fma(w1, fbatch<Arch>::load_unaligned(x + t * cols + i + w), acc[t][1]);
        }
    }
    for (int t = 0; t < N; ++t) {
        float sum = xsimd::hadd(acc[t][0] + acc[t][1]);
        for (size_t j = i; j < cols; ++j) sum += row.one(j) * x[t * cols + j];
        out[t] = sum;
    }
}

template <class Arch, class Weights, class Elem>
void float_matmul(const Elem* weights, size_t row_begin, size_t row_end, size_t cols, const float* x,
                  size_t n_tokens, float* y, size_t ldy) {
    constexpr int tile = 4;
    float out[tile];
    for (size_t r = row_begin; r < row_end; ++r) {
        const Weights row{weights + r * cols};
        size_t t = 0;
        for (; t + tile <= n_tokens; t += tile) {
            float_row_tile<Arch, tile>(row, cols, x + t * cols, out);
            for (int k = 0; k < tile; ++k) y[(t + k) * ldy + r] = out[k];
        }
        for (; t < n_tokens; ++t) {
            float_row_tile<Arch, 1>(row, cols, x + t * cols, out);
            y[t * ldy + r] = out[0];
        }
    }
}

template <class Arch>
void simd_matmul_f32(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x,
                     size_t n_tokens, float* y, size_t ldy) {
    float_matmul<Arch, f32_weights<Arch>>(static_cast<const float*>(w), row_begin, row_end, cols,
                                          static_cast<const float*>(x), n_tokens, y, ldy);
}
template <class Arch>
void simd_matmul_f16(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x,
                     size_t n_tokens, float* y, size_t ldy) {
    float_matmul<Arch, f16_weights<Arch>>(static_cast<const uint16_t*>(w), row_begin, row_end, cols,
                                          static_cast<const float*>(x), n_tokens, y, ldy);
}
template <class Arch>
void simd_matmul_bf16(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x,
                      size_t n_tokens, float* y, size_t ldy) {
    float_matmul<Arch, bf16_weights<Arch>>(static_cast<const uint16_t*>(w), row_begin, row_end, cols,
                                           static_cast<const float*>(x), n_tokens, y, ldy);
}

template <class Arch>
void simd_rmsnorm(const float* x, const float* weight, float eps, float* out, size_t n) {
    constexpr size_t w = fbatch<Arch>::size;
    const float inv = 1.0f / std::sqrt(simd_dot<Arch>(x, x, n) / float(n) + eps);
    const fbatch<Arch> vinv(inv);
    size_t i = 0;
    for (; i + w <= n; i += w)
        (fbatch<Arch>::load_unaligned(x + i) * vinv * fbatch<Arch>::load_unaligned(weight + i)).store_unaligned(out + i);
    for (; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

template <class Arch>
void simd_rope(float* x, size_t n_heads, size_t head_dim, const float* cos, const float* sin, rope_style style) {
    constexpr size_t w = fbatch<Arch>::size;
    const size_t half = head_dim / 2;
    for (size_t h = 0; h < n_heads; ++h) {
        float* head = x + h * head_dim;
        if (style == rope_style::neox) {
            size_t i = 0;
            for (; i + w <= half; i += w) {
                const auto a = fbatch<Arch>::load_unaligned(head + i);
                const auto b = fbatch<Arch>::load_unaligned(head + half + i);
                const auto c = fbatch<Arch>::load_unaligned(cos + i);
                const auto s = fbatch<Arch>::load_unaligned(sin + i);
                (a * c - b * s).store_unaligned(head + i);
                (a * s + b * c).store_unaligned(head + half + i);
            }
            for (; i < half; ++i) {
                const float a = head[i], b = head[half + i];
                head[i] = a * cos[i] - b * sin[i];
                head[half + i] = a * sin[i] + b * cos[i];
            }
        } else {
            // Adjacent pairs: a few hundred floats per token, left to the compiler's vectoriser.
            for (size_t i = 0; i < half; ++i) {
                const float a = head[2 * i], b = head[2 * i + 1];
                head[2 * i] = a * cos[i] - b * sin[i];
                head[2 * i + 1] = a * sin[i] + b * cos[i];
            }
        }
    }
}

template <class Arch>
void simd_swiglu(const float* gate, const float* up, float* out, size_t n) {
    constexpr size_t w = fbatch<Arch>::size;
    const fbatch<Arch> one(1.0f);
    size_t i = 0;
    for (; i + w <= n; i += w) {
        const auto g = fbatch<Arch>::load_unaligned(gate + i);
        (g / (one + xsimd::exp(-g)) * fbatch<Arch>::load_unaligned(up + i)).store_unaligned(out + i);
    }
    for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

template <class Arch>
void simd_softmax(float* x, size_t n) {
    constexpr size_t w = fbatch<Arch>::size;
    float max = x[0];
    size_t i = 0;
    if (n >= w) {
        fbatch<Arch> vmax = fbatch<Arch>::load_unaligned(x);
        for (i = w; i + w <= n; i += w) vmax = xsimd::max(vmax, fbatch<Arch>::load_unaligned(x + i));
        alignas(64) float lanes[w];
        vmax.store_aligned(lanes);
        for (float lane : lanes) max = std::fmax(max, lane);
    }
    for (; i < n; ++i) max = std::fmax(max, x[i]);
    const fbatch<Arch> vmax(max);
    fbatch<Arch> vsum(0.0f);
    for (i = 0; i + w <= n; i += w) {
        const auto e = xsimd::exp(fbatch<Arch>::load_unaligned(x + i) - vmax);
        e.store_unaligned(x + i);
        vsum += e;
    }
    float sum = xsimd::hadd(vsum);
    for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
    const float inv = 1.0f / sum;
    const fbatch<Arch> vinv(inv);
    for (i = 0; i + w <= n; i += w) (fbatch<Arch>::load_unaligned(x + i) * vinv).store_unaligned(x + i);
    for (; i < n; ++i) x[i] *= inv;
}

template <class Arch>
void simd_add(const float* a, const float* b, float* out, size_t n) {
    constexpr size_t w = fbatch<Arch>::size;
    size_t i = 0;
    for (; i + w <= n; i += w)
        (fbatch<Arch>::load_unaligned(a + i) + fbatch<Arch>::load_unaligned(b + i)).store_unaligned(out + i);
    for (; i < n; ++i) out[i] = a[i] + b[i];
}

template <class Arch>
void simd_scale(const float* x, float factor, float* out, size_t n) {
    constexpr size_t w = fbatch<Arch>::size;
    const fbatch<Arch> f(factor);
    size_t i = 0;
    for (; i + w <= n; i += w) (fbatch<Arch>::load_unaligned(x + i) * f).store_unaligned(out + i);
    for (; i < n; ++i) out[i] = x[i] * factor;
}

template <class Arch>
void simd_f16_to_f32(const uint16_t* src, float* dst, size_t n) {
    constexpr size_t w = fbatch<Arch>::size;
    size_t i = 0;
    for (; i + w <= n; i += w) half_io<Arch>::load_f16(src + i).store_unaligned(dst + i);
    for (; i < n; ++i) dst[i] = quant::f16_to_f32(src[i]);
}

template <class Arch>
void simd_f32_to_f16(const float* src, uint16_t* dst, size_t n) {
    constexpr size_t w = fbatch<Arch>::size;
    size_t i = 0;
    for (; i + w <= n; i += w) half_io<Arch>::store_f16(dst + i, fbatch<Arch>::load_unaligned(src + i));
    for (; i < n; ++i) dst[i] = quant::f32_to_f16(src[i]);
}

}  // namespace
}  // namespace kiln::kernels
