// The reference llama forward pass (RMSNorm, RoPE, grouped-query attention, SwiGLU), in f32.
#include "kiln/runtime/reference_llama.hpp"

#include <algorithm>
#include <cmath>

#include "kiln/formats/error.hpp"
#include "kiln/runtime/rope.hpp"
#include "reference_ops.hpp"

namespace kiln {
namespace {

using reference::load_or_empty;
using reference::matvec;
using reference::rmsnorm;

void add_bias(float* y, const std::vector<float>& bias) {
    for (size_t i = 0; i < bias.size(); ++i) y[i] += bias[i];
}

// Rotates each head of `vec` (n_heads * head_dim values) by the angles of one position (see
// rope_angles_for); interleaved pairs are (2i, 2i+1), neox pairs (i, i+head_dim/2).
void rope(float* vec, size_t n_heads, size_t head_dim, const float* cos, const float* sin, rope_style style) {
    const size_t half = head_dim / 2;
    for (size_t h = 0; h < n_heads; ++h) {
        float* head = vec + h * head_dim;
        for (size_t i = 0; i < half; ++i) {
            const size_t a = style == rope_style::interleaved ? 2 * i : i;
            const size_t b = style == rope_style::interleaved ? 2 * i + 1 : i + half;
            const float x0 = head[a], x1 = head[b];
            head[a] = x0 * cos[i] - x1 * sin[i];
            head[b] = x0 * sin[i] + x1 * cos[i];
        }
    }
}

void softmax(float* x, size_t n) {
    const float max = *std::max_element(x, x + n);
    float sum = 0;
    for (size_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
    for (size_t i = 0; i < n; ++i) x[i] /= sum;
}

}  // namespace

reference_llama::reference_llama(std::shared_ptr<const model> m, int32_t context_length)
    : model_(std::move(m)), config_(model_->config()) {
    const llama_config& c = config_;
    context_ = context_length > 0 ? context_length : static_cast<int32_t>(c.context_length);
    const llama_weights& w = model_->weights();
    token_embd_ = tensor_to_f32(*w.token_embd);
    output_norm_ = tensor_to_f32(*w.output_norm);
    output_ = tensor_to_f32(*w.output);
    for (const auto& lw : w.layers) {
        layers_.push_back({tensor_to_f32(*lw.attn_norm), tensor_to_f32(*lw.attn_q), tensor_to_f32(*lw.attn_k),
                           tensor_to_f32(*lw.attn_v), tensor_to_f32(*lw.attn_output), load_or_empty(lw.attn_q_bias),
                           load_or_empty(lw.attn_k_bias), load_or_empty(lw.attn_v_bias), tensor_to_f32(*lw.ffn_norm),
                           tensor_to_f32(*lw.ffn_gate), tensor_to_f32(*lw.ffn_up), tensor_to_f32(*lw.ffn_down)});
    }
    const size_t cache_size = c.n_layers * size_t(context_) * c.kv_dim();
    key_cache_.assign(cache_size, 0.0f);
    value_cache_.assign(cache_size, 0.0f);
    x_.resize(c.dim);
    xb_.resize(std::max(c.dim, c.q_dim()));
    q_.resize(c.q_dim());
    k_.resize(c.kv_dim());
    v_.resize(c.kv_dim());
    att_out_.resize(c.q_dim());
    scores_.resize(size_t(context_));
    gate_.resize(c.hidden_dim);
    up_.resize(c.hidden_dim);
    logits_.resize(c.vocab_size);
    rope_cos_.resize(c.head_dim / 2);
    rope_sin_.resize(c.head_dim / 2);
}

std::span<const float> reference_llama::forward(int32_t token, int32_t pos) {
    const llama_config& c = config_;
    if (token < 0 || uint64_t(token) >= c.vocab_size) throw error("token id " + std::to_string(token) + " is out of range");
    if (pos < 0 || pos >= context_) throw error("position " + std::to_string(pos) + " is outside the context");
    const size_t dim = c.dim, hd = c.head_dim, kv_dim = c.kv_dim(), q_dim = c.q_dim();
    const size_t group = c.n_heads / c.n_kv_heads;  // query heads per kv head
    const float inv_sqrt_hd = 1.0f / std::sqrt(float(hd));

    std::copy_n(token_embd_.data() + size_t(token) * dim, dim, x_.data());
    rope_angles_for(c, size_t(pos), rope_cos_.data(), rope_sin_.data());  // the same for every layer
    for (size_t l = 0; l < c.n_layers; ++l) {
        const layer& L = layers_[l];
        // Attention: project, rotate, append to the cache, attend over positions 0..pos.
        rmsnorm(xb_.data(), x_.data(), L.attn_norm.data(), dim, c.norm_eps);
        matvec(q_.data(), L.wq.data(), xb_.data(), q_dim, dim);
        matvec(k_.data(), L.wk.data(), xb_.data(), kv_dim, dim);
        matvec(v_.data(), L.wv.data(), xb_.data(), kv_dim, dim);
        add_bias(q_.data(), L.bq);
        add_bias(k_.data(), L.bk);
        add_bias(v_.data(), L.bv);
        rope(q_.data(), c.n_heads, hd, rope_cos_.data(), rope_sin_.data(), c.rope);
        rope(k_.data(), c.n_kv_heads, hd, rope_cos_.data(), rope_sin_.data(), c.rope);
        float* layer_keys = key_cache_.data() + l * size_t(context_) * kv_dim;
        float* layer_values = value_cache_.data() + l * size_t(context_) * kv_dim;
        std::copy(k_.begin(), k_.end(), layer_keys + size_t(pos) * kv_dim);
        std::copy(v_.begin(), v_.end(), layer_values + size_t(pos) * kv_dim);
        for (size_t h = 0; h < c.n_heads; ++h) {
            const float* q = q_.data() + h * hd;
            const size_t kv_offset = (h / group) * hd;
            for (int32_t t = 0; t <= pos; ++t) {
                const float* k = layer_keys + size_t(t) * kv_dim + kv_offset;
                float dot = 0;
                for (size_t i = 0; i < hd; ++i) dot += q[i] * k[i];
                scores_[size_t(t)] = dot * inv_sqrt_hd;
            }
            softmax(scores_.data(), size_t(pos) + 1);
            float* out = att_out_.data() + h * hd;
            std::fill(out, out + hd, 0.0f);
            for (int32_t t = 0; t <= pos; ++t) {
                const float* v = layer_values + size_t(t) * kv_dim + kv_offset;
                for (size_t i = 0; i < hd; ++i) out[i] += scores_[size_t(t)] * v[i];
            }
        }
        matvec(xb_.data(), L.wo.data(), att_out_.data(), dim, q_dim);
        for (size_t i = 0; i < dim; ++i) x_[i] += xb_[i];

        // Feed-forward: x += W_down (silu(W_gate xn) * W_up xn).
        rmsnorm(xb_.data(), x_.data(), L.ffn_norm.data(), dim, c.norm_eps);
        matvec(gate_.data(), L.w_gate.data(), xb_.data(), c.hidden_dim, dim);
        matvec(up_.data(), L.w_up.data(), xb_.data(), c.hidden_dim, dim);
        for (size_t i = 0; i < c.hidden_dim; ++i) gate_[i] = gate_[i] / (1.0f + std::exp(-gate_[i])) * up_[i];
        matvec(xb_.data(), L.w_down.data(), gate_.data(), dim, c.hidden_dim);
        for (size_t i = 0; i < dim; ++i) x_[i] += xb_[i];
    }
    rmsnorm(x_.data(), x_.data(), output_norm_.data(), dim, c.norm_eps);
    matvec(logits_.data(), output_.data(), x_.data(), c.vocab_size, dim);
    return logits_;
}

}  // namespace kiln
