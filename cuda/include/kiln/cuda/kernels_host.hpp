// Each device kernel run once on host data (upload, launch, synchronize, download), so tests can
// hold every kernel against the CPU reference without touching a CUDA type. Slow by design;
// the forward pass calls the kernels directly. All throw kiln::error on a CUDA failure.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/formats/tensor_type.hpp"

namespace kiln::cuda::host {

// y[t * rows + r] = W[r] . x[t] for W of `rows` rows of `cols` elements stored as `type`
// (row_bytes(type, cols) bytes each). n == 1 runs the matrix-vector kernel, n > 1 the GEMM.
std::vector<float> matmul(tensor_type type, const void* weights, size_t rows, size_t cols, const float* x, size_t n);
// Rows `tokens` of the table, dequantized.
std::vector<float> embed(tensor_type type, const void* table, size_t rows, size_t cols,
                         const std::vector<int32_t>& tokens);
std::vector<float> rmsnorm(const std::vector<float>& x, const std::vector<float>& weight, float eps);
// cos/sin: [position][head_dim / 2]; rows of x at positions pos, pos + 1, ...
std::vector<float> rope(const std::vector<float>& x, size_t n_heads, size_t head_dim, const std::vector<float>& cos,
                        const std::vector<float>& sin, int32_t pos, bool neox);
std::vector<float> swiglu(const std::vector<float>& gate, const std::vector<float>& up);
// Attention of n = q.size() / (n_heads * head_dim) rows at positions pos.. over caches of f16
// bits [position][n_kv_heads * head_dim] holding at least pos + n positions.
std::vector<float> attention(const std::vector<float>& q, size_t n_heads, size_t n_kv_heads, size_t head_dim,
                             const std::vector<uint16_t>& k_cache, const std::vector<uint16_t>& v_cache, int32_t pos,
                             size_t splits);
// MoE routing of router logits [token][n_experts] (n_experts <= 256): ids and weights get
// top_k values per token, as kiln::route_token computes them.
void route_experts(const std::vector<float>& logits, size_t n_experts, size_t top_k, bool normalize, float scale,
                   std::vector<int32_t>& ids, std::vector<float>& weights);
// The f16 bits the KV store writes for these values.
std::vector<uint16_t> to_f16(const std::vector<float>& values);


// ---- deepseek2.
// y[t][h] = W_h x[t][h] for x [n][heads][cols] and a stack of `heads` matrices of rows x cols
// (W_UK / W_UV absorption); y is [n][heads][rows].
std::vector<float> head_matvec(tensor_type type, const void* weights, size_t heads, size_t rows, size_t cols,
                               const std::vector<float>& x);
// y[t * top_k + j] = W_{ids[t * top_k + j]} x[t] for x [n][cols] and a stack of n_experts
// matrices of rows x cols; y is [n * top_k][rows].
std::vector<float> expert_matvec(tensor_type type, const void* weights, size_t n_experts, size_t rows, size_t cols,
                                 const std::vector<int32_t>& ids, size_t top_k, const std::vector<float>& x);
// x[t] += the chosen experts' weighted outputs (expert_out [n * top_k][dim]), ascending expert id.
std::vector<float> moe_combine(const std::vector<float>& x, const std::vector<float>& expert_out,
                               const std::vector<int32_t>& ids, const std::vector<float>& weights, size_t top_k);
// The latent cache (f16 bits, [pos + n][lora + rope], zero before pos) after storing n rows of
// kv ([c_kv, k_rope] each) at positions pos..: RMSNorm(c_kv) * norm, k_rope rotated (interleaved).
std::vector<uint16_t> store_latent(const std::vector<float>& kv, size_t lora, size_t rope,
                                   const std::vector<float>& norm, float eps, const std::vector<float>& cos,
                                   const std::vector<float>& sin, int32_t pos);
// qa [n][heads][lora + rope] (zero but for the tails) with each head's q rope part ([n][heads]
// [nope + rope] rows) rotated into the tail.
std::vector<float> rope_query_tail(const std::vector<float>& q, size_t heads, size_t nope, size_t rope, size_t lora,
                                   const std::vector<float>& cos, const std::vector<float>& sin, int32_t pos);
// Latent attention of q [n][heads][lora + rope] at positions pos.. over a cache of f16 bits
// [position][lora + rope] (at least pos + n positions): out [n][heads][lora].
std::vector<float> latent_attention(const std::vector<float>& q, size_t heads, size_t lora, size_t rope, float scale,
                                    const std::vector<uint16_t>& cache, int32_t pos, size_t splits);

}  // namespace kiln::cuda::host
