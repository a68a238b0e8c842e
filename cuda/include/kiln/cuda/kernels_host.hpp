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

}  // namespace kiln::cuda::host
