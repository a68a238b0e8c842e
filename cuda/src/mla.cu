// The element kernels of deepseek2's multi-head latent attention (fast_deepseek2::attention):
// the latent cache store (RMSNorm of c_kv, rotation of the shared rope key, f16 rounding) and
// the rotation of each head's query rope part into the absorbed query's tail. RoPE pairs are
// interleaved (2i, 2i + 1), HF's weight order (SPEC_deepseek2.md).
#include "common.cuh"

namespace kiln::cuda::detail {
namespace {

constexpr int norm_threads = 256;

// One block per token.
__global__ void store_latent_kernel(const float* __restrict__ kv, size_t lora, size_t rope,
                                    const float* __restrict__ norm_weight, float eps, const float* __restrict__ cos_table,
                                    const float* __restrict__ sin_table, const int32_t* __restrict__ d_pos,
                                    uint16_t* __restrict__ cache) {
    const size_t t = blockIdx.x, width = lora + rope, half = rope / 2;
    const size_t pos = size_t(*d_pos) + t;
    const float* row = kv + t * width;
    uint16_t* dst = cache + pos * width;
    // RMSNorm over c_kv, as rmsnorm_kernel (elementwise.cu).
    const float inv_rms = block_inv_rms<norm_threads>(row, lora, eps);
    for (size_t i = threadIdx.x; i < lora; i += norm_threads) dst[i] = f32_to_f16_bits(row[i] * inv_rms * norm_weight[i]);
    // The shared rope key, as rope_kernel's interleaved pairs.
    for (size_t p = threadIdx.x; p < half; p += norm_threads) {
        const float c = cos_table[pos * half + p], s = sin_table[pos * half + p];
        const float x0 = row[lora + 2 * p], x1 = row[lora + 2 * p + 1];
        dst[lora + 2 * p] = f32_to_f16_bits(x0 * c - x1 * s);
        dst[lora + 2 * p + 1] = f32_to_f16_bits(x0 * s + x1 * c);
    }
}

__global__ void rope_query_tail_kernel(const float* __restrict__ q, size_t n, size_t n_heads, size_t nope, size_t rope,
                                       size_t lora, const float* __restrict__ cos_table,
                                       const float* __restrict__ sin_table, const int32_t* __restrict__ d_pos,
                                       float* __restrict__ qa) {
    const size_t half = rope / 2;
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;  // over n * n_heads * half pairs
    if (i >= n * n_heads * half) return;
    const size_t pair = i % half, head = (i / half) % n_heads, t = i / (half * n_heads);
    const size_t pos = size_t(*d_pos) + t;
    const float* src = q + (t * n_heads + head) * (nope + rope) + nope;
    float* dst = qa + (t * n_heads + head) * (lora + rope) + lora;
    const float c = cos_table[pos * half + pair], s = sin_table[pos * half + pair];
    const float x0 = src[2 * pair], x1 = src[2 * pair + 1];
    dst[2 * pair] = x0 * c - x1 * s;
    dst[2 * pair + 1] = x0 * s + x1 * c;
}

}  // namespace

void store_latent(const float* kv, size_t n, size_t lora, size_t rope, const float* norm_weight, float eps,
                  const float* cos, const float* sin, const int32_t* d_pos, uint16_t* cache, cudaStream_t stream) {
    if (n == 0) return;
    store_latent_kernel<<<unsigned(n), norm_threads, 0, stream>>>(kv, lora, rope, norm_weight, eps, cos, sin, d_pos,
                                                                  cache);
    check(cudaGetLastError(), "latent store kernel launch");
}

void rope_query_tail(const float* q, size_t n, size_t n_heads, size_t nope, size_t rope, size_t lora,
                     const float* cos, const float* sin, const int32_t* d_pos, float* qa, cudaStream_t stream) {
    const size_t pairs = n * n_heads * (rope / 2);
    if (pairs == 0) return;
    constexpr unsigned threads = 256;
    rope_query_tail_kernel<<<unsigned((pairs + threads - 1) / threads), threads, 0, stream>>>(q, n, n_heads, nope, rope,
                                                                                            lora, cos, sin, d_pos, qa);
    check(cudaGetLastError(), "query rope kernel launch");
}

}  // namespace kiln::cuda::detail
