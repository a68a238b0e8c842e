// The device kernels' launchers: every pointer is device memory, every launch goes on `stream`
// and is checked at once (cudaGetLastError), so a bad configuration names the kernel. Positions
// are read from device memory (d_pos) so a captured CUDA graph stays valid at every position.
// Included by .cu and .cpp files alike: plain C++17 plus the CUDA runtime's stream type.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace kiln::cuda::detail {

// Values of kiln::tensor_type (formats/tensor_type.hpp; stored in files, never renumbered).
enum weight_type : uint32_t { w_f32 = 0, w_f16 = 1, w_bf16 = 2, w_q8_0 = 8, w_q4_0 = 9, w_q4_k = 12 };

// A row-major matrix in its stored (.kiln) type: `rows` rows of `row_bytes` bytes, `cols` elements.
struct device_weight {
    uint32_t type = w_f32;
    const uint8_t* data = nullptr;
    size_t rows = 0, cols = 0, row_bytes = 0;
};

// Throws kiln::error naming `what` and CUDA's message when status is not cudaSuccess.
void check(cudaError_t status, const char* what);

// y[r] = sum_c W[r][c] x[c]: one warp per row, fp32 accumulation (decode).
void matvec(const device_weight& w, const float* x, float* y, cudaStream_t stream);
// y[t * rows + r] = sum_c W[r][c] x[t * cols + c] for t < n: 64x64 output tiles, weight tiles
// dequantized into shared memory on the fly, fp32 accumulation (prefill).
void gemm(const device_weight& w, const float* x, size_t n, float* y, cudaStream_t stream);
// out[t] = row tokens[t] of `table`, dequantized to f32.
void embed(const device_weight& table, const int32_t* tokens, size_t n, float* out, cudaStream_t stream);

// out[t] = x[t] / rms(x[t]) * weight, per row of dim (out may be x).
void rmsnorm(const float* x, const float* weight, float* out, size_t n, size_t dim, float eps, cudaStream_t stream);
// Rotates n rows of n_heads * head_dim values, row t at position *d_pos + t, by the angle table
// cos/sin [position][head_dim / 2]; neox pairs (i, i + head_dim/2), else (2i, 2i + 1).
void rope(float* x, size_t n, size_t n_heads, size_t head_dim, const float* cos, const float* sin,
          const int32_t* d_pos, bool neox, cudaStream_t stream);
// y[t * width + i] += bias[i] for t < n.
void add_bias(float* y, const float* bias, size_t n, size_t width, cudaStream_t stream);
// x[i] += y[i].
void add(float* x, const float* y, size_t count, cudaStream_t stream);
// gate[i] = silu(gate[i]) * up[i].
void swiglu(float* gate, const float* up, size_t count, cudaStream_t stream);

// Writes n rows of keys and values (kv_dim each, f32) as f16 into one layer's caches
// [position][kv_dim] at positions *d_pos ...
void store_kv(const float* k, const float* v, size_t n, size_t kv_dim, uint16_t* k_cache, uint16_t* v_cache,
              const int32_t* d_pos, cudaStream_t stream);

struct attention_shape {
    size_t n_heads = 0, n_kv_heads = 0, head_dim = 0;
};
// Largest head_dim the attention kernel takes (its per-lane accumulators are sized for it).
inline constexpr size_t max_head_dim = 256;
// Causal attention of n query rows (n_heads * head_dim each, row t at position *d_pos + t) over
// one layer's f16 caches, positions 0 .. *d_pos + t; GQA: query head h reads KV head
// h / (n_heads / n_kv_heads). Keys are taken in tiles of 32 with an online softmax. splits > 1
// (n == 1 only, decode) divides the keys among `splits` blocks per head whose partials
// (partial_floats(...) floats of scratch) a merge kernel combines.
void attention(const float* q, size_t n, const attention_shape& shape, const uint16_t* k_cache,
               const uint16_t* v_cache, const int32_t* d_pos, size_t splits, float* scratch, float* out,
               cudaStream_t stream);
inline size_t attention_scratch_floats(const attention_shape& shape, size_t splits) {
    return splits * shape.n_heads * (shape.head_dim + 2);
}

// Most experts the routing kernel takes (8 per lane; DeepSeek-V3 has 256).
inline constexpr size_t max_experts = 256;
// MoE routing of n_tokens rows of router logits (n_experts <= max_experts each), as
// kiln::route_token: ids/weights get top_k values per token, weights renormalised to sum 1 when
// normalize (and top_k > 1), else multiplied by scale.
void route_experts(const float* logits, size_t n_tokens, size_t n_experts, size_t top_k, bool normalize, float scale,
                   int32_t* ids, float* weights, cudaStream_t stream);


// ---- deepseek2 (multi-head latent attention, experts); kernels in mla.cu, latent_attention.cu,
// batched_matvec.cu and moe.cu.

// A stack of equally shaped matrices in one 3-D tensor (attn_k_b / attn_v_b: one per head;
// ffn_*_exps: one per expert): `w` is matrix 0, matrix m starts m * matrix_bytes further on.
struct weight_stack {
    device_weight w;
    size_t count = 0, matrix_bytes = 0;
};
// Where item b of a batched product reads and writes: with g = b / group and i = b % group,
// input x + g * x_stride + i * x_step (cols floats), output y + g * y_stride + i * y_step (rows).
struct batch_layout {
    size_t items = 0, group = 1;
    size_t x_stride = 0, x_step = 0, y_stride = 0, y_step = 0;
};
// y_b = W_m x_b for every item b: matrix m = ids[b] when ids (chosen experts, read on the device),
// else b % group (heads). One warp per output row, fp32 accumulation, as matvec.
void batched_matvec(const weight_stack& w, const int32_t* ids, const batch_layout& layout, const float* x, float* y,
                    cudaStream_t stream);

// The latent cache store of n tokens at positions *d_pos ...: row t of kv (latent_dim floats,
// [c_kv (lora), k_rope (rope)]) becomes RMSNorm(c_kv) * norm_weight, then k_rope rotated by
// the interleaved pairs (2i, 2i + 1) at its position, both written as f16 into the layer's cache
// [position][lora + rope].
void store_latent(const float* kv, size_t n, size_t lora, size_t rope, const float* norm_weight, float eps,
                  const float* cos, const float* sin, const int32_t* d_pos, uint16_t* cache, cudaStream_t stream);
// The absorbed query's rope tail: for n tokens of n_heads heads, q row [nope, rope] per head
// (stride nope + rope), the rope part rotated (interleaved pairs, position *d_pos + t) into
// qa's head row [lora, rope] (stride lora + rope) at offset lora.
void rope_query_tail(const float* q, size_t n, size_t n_heads, size_t nope, size_t rope, size_t lora,
                     const float* cos, const float* sin, const int32_t* d_pos, float* qa, cudaStream_t stream);

struct latent_shape {
    size_t n_heads = 0, lora = 0, rope = 0;  // keys are lora + rope wide, values the first lora
    float scale = 1.0f;                      // score = scale * (q . k)
};
// Largest kv_lora_rank the latent kernel takes (its per-lane accumulators are sized for it).
inline constexpr size_t max_latent_lora = 512;
// Dynamic shared memory the latent attention kernel needs for this width; call
// prepare_latent_attention once (outside any graph capture) before launching with it.
size_t latent_attention_shared_bytes(const latent_shape& shape);
void prepare_latent_attention(const latent_shape& shape);
// Causal MLA attention in the latent space: n query rows of n_heads heads (lora + rope each,
// token t at position *d_pos + t) over one layer's f16 latent cache, every head reading the one
// shared latent key; out gets n_heads * lora floats per token. splits as attention() (decode).
void latent_attention(const float* q, size_t n, const latent_shape& shape, const uint16_t* cache,
                      const int32_t* d_pos, size_t splits, float* scratch, float* out, cudaStream_t stream);
inline size_t latent_scratch_floats(const latent_shape& shape, size_t splits) {
    return splits * shape.n_heads * (shape.lora + 2);
}

// x[t] += sum over token t's top_k experts, in ascending expert id (fast_deepseek2's order), of
// weights[t * top_k + j] * expert_out[(t * top_k + j) * dim ...].
void moe_combine(float* x, const float* expert_out, const int32_t* ids, const float* weights, size_t n, size_t top_k,
                 size_t dim, cudaStream_t stream);

}  // namespace kiln::cuda::detail
