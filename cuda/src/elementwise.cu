// Row and element kernels of the llama block: RMSNorm, RoPE, biases, residual adds, SwiGLU, and
// the f16 KV cache store.
#include "common.cuh"

namespace kiln::cuda::detail {
namespace {

constexpr int norm_threads = 256;

__global__ void rmsnorm_kernel(const float* x, const float* __restrict__ weight, float* out, size_t dim, float eps) {
    const float* row = x + size_t(blockIdx.x) * dim;
    float* dst = out + size_t(blockIdx.x) * dim;
    const float inv_rms = block_inv_rms<norm_threads>(row, dim, eps);
    for (size_t i = threadIdx.x; i < dim; i += norm_threads) dst[i] = row[i] * inv_rms * weight[i];
}

__global__ void rope_kernel(float* x, size_t n, size_t n_heads, size_t head_dim, const float* __restrict__ cos_table,
                            const float* __restrict__ sin_table, const int32_t* __restrict__ d_pos, bool neox) {
    const size_t half = head_dim / 2;
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;  // over n * n_heads * half pairs
    if (i >= n * n_heads * half) return;
    const size_t pair = i % half, head = (i / half) % n_heads, t = i / (half * n_heads);
    const size_t pos = size_t(*d_pos) + t;
    float* h = x + t * n_heads * head_dim + head * head_dim;
    const size_t a = neox ? pair : 2 * pair, b = neox ? pair + half : 2 * pair + 1;
    const float c = cos_table[pos * half + pair], s = sin_table[pos * half + pair];
    const float x0 = h[a], x1 = h[b];
    h[a] = x0 * c - x1 * s;
    h[b] = x0 * s + x1 * c;
}

__global__ void add_bias_kernel(float* y, const float* __restrict__ bias, size_t count, size_t width) {
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) y[i] += bias[i % width];
}

__global__ void add_kernel(float* x, const float* __restrict__ y, size_t count) {
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) x[i] += y[i];
}

__global__ void swiglu_kernel(float* gate, const float* __restrict__ up, size_t count) {
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) {
        const float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

__global__ void store_kv_kernel(const float* __restrict__ k, const float* __restrict__ v, size_t count, size_t kv_dim,
                                uint16_t* k_cache, uint16_t* v_cache, const int32_t* __restrict__ d_pos) {
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= count) return;
    const size_t at = size_t(*d_pos) * kv_dim + i;  // rows are consecutive positions
    k_cache[at] = f32_to_f16_bits(k[i]);
    v_cache[at] = f32_to_f16_bits(v[i]);
}

constexpr unsigned threads = 256;
unsigned blocks_for(size_t count) { return unsigned((count + threads - 1) / threads); }

}  // namespace

void rmsnorm(const float* x, const float* weight, float* out, size_t n, size_t dim, float eps, cudaStream_t stream) {
    rmsnorm_kernel<<<unsigned(n), norm_threads, 0, stream>>>(x, weight, out, dim, eps);
    check(cudaGetLastError(), "rmsnorm kernel launch");
}

void rope(float* x, size_t n, size_t n_heads, size_t head_dim, const float* cos, const float* sin,
          const int32_t* d_pos, bool neox, cudaStream_t stream) {
    const size_t pairs = n * n_heads * (head_dim / 2);
    if (pairs == 0) return;
    rope_kernel<<<blocks_for(pairs), threads, 0, stream>>>(x, n, n_heads, head_dim, cos, sin, d_pos, neox);
    check(cudaGetLastError(), "rope kernel launch");
}

void add_bias(float* y, const float* bias, size_t n, size_t width, cudaStream_t stream) {
    if (n * width == 0) return;
    add_bias_kernel<<<blocks_for(n * width), threads, 0, stream>>>(y, bias, n * width, width);
    check(cudaGetLastError(), "bias kernel launch");
}

void add(float* x, const float* y, size_t count, cudaStream_t stream) {
    if (count == 0) return;
    add_kernel<<<blocks_for(count), threads, 0, stream>>>(x, y, count);
    check(cudaGetLastError(), "residual add kernel launch");
}

void swiglu(float* gate, const float* up, size_t count, cudaStream_t stream) {
    if (count == 0) return;
    swiglu_kernel<<<blocks_for(count), threads, 0, stream>>>(gate, up, count);
    check(cudaGetLastError(), "swiglu kernel launch");
}

void store_kv(const float* k, const float* v, size_t n, size_t kv_dim, uint16_t* k_cache, uint16_t* v_cache,
              const int32_t* d_pos, cudaStream_t stream) {
    if (n * kv_dim == 0) return;
    store_kv_kernel<<<blocks_for(n * kv_dim), threads, 0, stream>>>(k, v, n * kv_dim, kv_dim, k_cache, v_cache, d_pos);
    check(cudaGetLastError(), "KV store kernel launch");
}

}  // namespace kiln::cuda::detail
