// The llama forward pass on the GPU. Mirrors reference_llama/fast_llama step for step: RMSNorm,
// Q/K/V projections (+ biases), RoPE from the same host-computed angle table, an f16 KV cache,
// causal GQA attention, the output projection, SwiGLU feed-forward, the classifier. Weights are
// copied once from the mmap in their .kiln types; activations never leave the device, only the
// logits come back. A decode step (one token) is captured once as a CUDA graph and replayed: the
// token and position are read from device memory, so one graph serves every position.
#include <algorithm>
#include <string>
#include <vector>

#include "cuda_deepseek2.hpp"
#include "kiln/cuda/cuda_backend.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/runtime/rope.hpp"
#include "launch.hpp"
#include "model_runner.hpp"

namespace kiln::cuda {
namespace {

using detail::device_weight;

class cuda_llama final : public detail::model_runner {
public:
    cuda_llama(std::shared_ptr<const model> m, const cuda_options& options);

private:
    struct layer {
        device_weight wq, wk, wv, wo, gate, up, down;
        const float *attn_norm, *ffn_norm;
        const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
    };

    void enqueue(size_t n, bool all_logits) override;

    llama_config config_;
    device_weight token_embd_, output_;
    const float* output_norm_ = nullptr;
    std::vector<layer> layers_;

    uint16_t *key_cache_, *value_cache_;  // [layer][position][kv_dim] f16
    float *x_, *xb_, *q_, *k_, *v_, *att_, *gate_, *up_;
};

cuda_llama::cuda_llama(std::shared_ptr<const model> m, const cuda_options& options)
    : model_runner(std::move(m)), config_(model_->config()) {
    if (model_->is_deepseek2()) throw error("cuda_llama needs a llama-architecture model");
    open_device(options.device);
    const llama_config& c = config_;
    if (c.head_dim > detail::max_head_dim || c.head_dim % 2)
        throw error("head_dim " + std::to_string(c.head_dim) + " is not supported by the CUDA attention kernel (even, at most " +
                    std::to_string(detail::max_head_dim) + ")");
    configure(options, c.context_length, c.vocab_size);

    const llama_weights& w = model_->weights();
    token_embd_ = upload_matrix(*w.token_embd);
    output_ = upload_matrix(*w.output);
    output_norm_ = upload_f32(w.output_norm);
    for (const llama_layer_weights& lw : w.layers) {
        layer L;
        L.attn_norm = upload_f32(lw.attn_norm);
        L.ffn_norm = upload_f32(lw.ffn_norm);
        L.wq = upload_matrix(*lw.attn_q);
        L.wk = upload_matrix(*lw.attn_k);
        L.wv = upload_matrix(*lw.attn_v);
        L.wo = upload_matrix(*lw.attn_output);
        L.gate = upload_matrix(*lw.ffn_gate);
        L.up = upload_matrix(*lw.ffn_up);
        L.down = upload_matrix(*lw.ffn_down);
        if (lw.attn_q_bias) L.bq = upload_f32(lw.attn_q_bias);
        if (lw.attn_k_bias) L.bk = upload_f32(lw.attn_k_bias);
        if (lw.attn_v_bias) L.bv = upload_f32(lw.attn_v_bias);
        layers_.push_back(L);
    }

    const size_t cache_size = c.n_layers * size_t(context_) * c.kv_dim() * sizeof(uint16_t);
    key_cache_ = cache(cache_size, "the key cache").get<uint16_t>();
    value_cache_ = cache(cache_size, "the value cache").get<uint16_t>();

    // The angle table for every position, computed by the same function the CPU passes use.
    const size_t half = c.head_dim / 2;
    std::vector<float> cos(size_t(context_) * half), sin(size_t(context_) * half);
    for (size_t p = 0; p < size_t(context_); ++p) rope_angles_for(c, p, cos.data() + p * half, sin.data() + p * half);
    upload_rope(cos, sin);

    const size_t b = max_batch_;
    x_ = floats(b * c.dim, "activations");
    xb_ = floats(b * std::max(c.dim, c.q_dim()), "activations");
    q_ = floats(b * c.q_dim(), "activations");
    k_ = floats(b * c.kv_dim(), "activations");
    v_ = floats(b * c.kv_dim(), "activations");
    att_ = floats(b * c.q_dim(), "activations");
    gate_ = floats(b * c.hidden_dim, "activations");
    up_ = floats(b * c.hidden_dim, "activations");
    finish_setup(detail::attention_scratch_floats({c.n_heads, c.n_kv_heads, c.head_dim}, splits_));
}

void cuda_llama::enqueue(size_t n, bool all_logits) {
    const llama_config& c = config_;
    const size_t dim = c.dim, kv_dim = c.kv_dim(), q_dim = c.q_dim(), hidden = c.hidden_dim;
    const float eps = float(c.norm_eps);
    const bool neox = c.rope == rope_style::neox;
    const size_t layer_cache = size_t(context_) * kv_dim;
    const detail::attention_shape shape{c.n_heads, c.n_kv_heads, c.head_dim};
    detail::embed(token_embd_, d_tokens_, n, x_, stream_);
    for (size_t l = 0; l < layers_.size(); ++l) {
        const layer& L = layers_[l];
        detail::rmsnorm(x_, L.attn_norm, xb_, n, dim, eps, stream_);
        project(L.wq, xb_, n, q_);
        project(L.wk, xb_, n, k_);
        project(L.wv, xb_, n, v_);
        if (L.bq) detail::add_bias(q_, L.bq, n, q_dim, stream_);
        if (L.bk) detail::add_bias(k_, L.bk, n, kv_dim, stream_);
        if (L.bv) detail::add_bias(v_, L.bv, n, kv_dim, stream_);
        detail::rope(q_, n, c.n_heads, c.head_dim, rope_cos_.get<float>(), rope_sin_.get<float>(), d_pos_, neox, stream_);
        detail::rope(k_, n, c.n_kv_heads, c.head_dim, rope_cos_.get<float>(), rope_sin_.get<float>(), d_pos_, neox,
                     stream_);
        uint16_t* keys = key_cache_ + l * layer_cache;
        uint16_t* values = value_cache_ + l * layer_cache;
        detail::store_kv(k_, v_, n, kv_dim, keys, values, d_pos_, stream_);
        detail::attention(q_, n, shape, keys, values, d_pos_, n == 1 ? splits_ : 1, att_scratch_, att_, stream_);
        project(L.wo, att_, n, xb_);
        detail::add(x_, xb_, n * dim, stream_);

        detail::rmsnorm(x_, L.ffn_norm, xb_, n, dim, eps, stream_);
        project(L.gate, xb_, n, gate_);
        project(L.up, xb_, n, up_);
        detail::swiglu(gate_, up_, n * hidden, stream_);
        project(L.down, gate_, n, xb_);
        detail::add(x_, xb_, n * dim, stream_);
    }
    const size_t rows = all_logits ? n : 1;
    const float* last = x_ + (n - rows) * dim;
    detail::rmsnorm(last, output_norm_, xb_, rows, dim, eps, stream_);
    project(output_, xb_, rows, logits_);
}

}  // namespace

std::unique_ptr<cuda_model> make_cuda_model(std::shared_ptr<const model> m, const cuda_options& options) {
    if (m->is_deepseek2()) return detail::make_cuda_deepseek2(std::move(m), options);
    return std::make_unique<cuda_llama>(std::move(m), options);
}

}  // namespace kiln::cuda
