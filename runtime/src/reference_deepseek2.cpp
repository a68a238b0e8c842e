// The reference deepseek2 forward pass (see reference_deepseek2.hpp), after HF's
// modeling_deepseek.py: DeepseekV2Attention without absorption, DeepseekV2MoE.
#include "kiln/runtime/reference_deepseek2.hpp"

#include <algorithm>
#include <cmath>

#include "kiln/formats/error.hpp"
#include "kiln/runtime/deepseek2_rope.hpp"
#include "kiln/runtime/moe_routing.hpp"
#include "reference_ops.hpp"

namespace kiln {
namespace {

using reference::load_or_empty;
using reference::matvec;
using reference::rmsnorm;

// Rotates one rope vector: pairs (2i, 2i+1), HF's weight order (see SPEC_deepseek2.md).
void rope(float* v, size_t dim, const float* cos, const float* sin) {
    for (size_t i = 0; i < dim / 2; ++i) {
        const float x0 = v[2 * i], x1 = v[2 * i + 1];
        v[2 * i] = x0 * cos[i] - x1 * sin[i];
        v[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
    }
}

}  // namespace

reference_deepseek2::reference_deepseek2(std::shared_ptr<const model> m, int32_t context_length)
    : model_(std::move(m)), config_(model_->deepseek2()) {
    if (!model_->is_deepseek2()) throw error("reference_deepseek2 needs a deepseek2 model");
    const deepseek2_config& c = config_;
    context_ = context_length > 0 ? context_length : int32_t(c.context_length);
    softmax_scale_ = deepseek2_softmax_scale(c);
    token_embd_ = tensor_to_f32(*model_->weights().token_embd);
    output_norm_ = tensor_to_f32(*model_->weights().output_norm);
    output_ = tensor_to_f32(*model_->weights().output);
    for (const deepseek2_layer_weights& w : model_->deepseek2_layers().layers) {
        layer L;
        L.attn_norm = tensor_to_f32(*w.attn_norm);
        L.wq = load_or_empty(w.attn_q);
        L.wq_a = load_or_empty(w.attn_q_a);
        L.q_a_norm = load_or_empty(w.attn_q_a_norm);
        L.wq_b = load_or_empty(w.attn_q_b);
        L.wkv_a = tensor_to_f32(*w.attn_kv_a_mqa);
        L.kv_a_norm = tensor_to_f32(*w.attn_kv_a_norm);
        L.k_b = tensor_to_f32(*w.attn_k_b);
        L.v_b = tensor_to_f32(*w.attn_v_b);
        L.wo = tensor_to_f32(*w.attn_output);
        L.ffn_norm = tensor_to_f32(*w.ffn_norm);
        L.w_gate = load_or_empty(w.ffn_gate);
        L.w_up = load_or_empty(w.ffn_up);
        L.w_down = load_or_empty(w.ffn_down);
        L.router = load_or_empty(w.ffn_gate_inp);
        L.gate_exps = load_or_empty(w.ffn_gate_exps);
        L.up_exps = load_or_empty(w.ffn_up_exps);
        L.down_exps = load_or_empty(w.ffn_down_exps);
        L.gate_shexp = load_or_empty(w.ffn_gate_shexp);
        L.up_shexp = load_or_empty(w.ffn_up_shexp);
        L.down_shexp = load_or_empty(w.ffn_down_shexp);
        layers_.push_back(std::move(L));
    }
    const size_t h = c.n_heads, positions = c.n_layers * size_t(context_);
    key_cache_.assign(positions * h * c.qk_head_dim(), 0.0f);
    value_cache_.assign(positions * h * c.v_head_dim, 0.0f);
    x_.resize(c.dim);
    xn_.resize(c.dim);
    q_.resize(h * c.qk_head_dim());
    q_a_.resize(c.q_lora_rank);
    kv_.resize(c.latent_dim());
    att_out_.resize(h * c.v_head_dim);
    scores_.resize(size_t(context_));
    const size_t widest = std::max({c.hidden_dim, c.expert_hidden_dim, c.shared_hidden_dim()});
    hidden_.resize(widest);
    up_.resize(widest);
    ffn_out_.resize(c.dim);
    logits_.resize(c.vocab_size);
    router_logits_.resize(c.n_experts);
    router_probs_.resize(c.n_experts);
    expert_ids_.resize(c.n_experts_used);
    expert_weights_.resize(c.n_experts_used);
    last_experts_.resize(c.n_layers);
    rope_cos_.resize(c.qk_rope_head_dim / 2);
    rope_sin_.resize(c.qk_rope_head_dim / 2);
}

void reference_deepseek2::ffn(float* out, const float* xn, const float* gate, const float* up, const float* down,
                              size_t hidden) {
    const size_t dim = config_.dim;
    matvec(hidden_.data(), gate, xn, hidden, dim);
    matvec(up_.data(), up, xn, hidden, dim);
    for (size_t i = 0; i < hidden; ++i) hidden_[i] = hidden_[i] / (1.0f + std::exp(-hidden_[i])) * up_[i];
    matvec(out, down, hidden_.data(), dim, hidden);
}

std::span<const float> reference_deepseek2::forward(int32_t token, int32_t pos) {
    const deepseek2_config& c = config_;
    if (token < 0 || uint64_t(token) >= c.vocab_size) throw error("token id " + std::to_string(token) + " is out of range");
    if (pos < 0 || pos >= context_) throw error("position " + std::to_string(pos) + " is outside the context");
    const size_t dim = c.dim, h = c.n_heads, nope = c.qk_nope_head_dim, rope_dim = c.qk_rope_head_dim;
    const size_t qk = c.qk_head_dim(), vd = c.v_head_dim, lora = c.kv_lora_rank;

    std::copy_n(token_embd_.data() + size_t(token) * dim, dim, x_.data());
    deepseek2_rope_angles(c, size_t(pos), rope_cos_.data(), rope_sin_.data());
    for (size_t l = 0; l < c.n_layers; ++l) {
        const layer& L = layers_[l];
        rmsnorm(xn_.data(), x_.data(), L.attn_norm.data(), dim, c.norm_eps);
        // Query: direct, or through the compressed q_a (normalised) when q_lora_rank > 0.
        if (c.q_lora_rank == 0) {
            matvec(q_.data(), L.wq.data(), xn_.data(), h * qk, dim);
        } else {
            matvec(q_a_.data(), L.wq_a.data(), xn_.data(), c.q_lora_rank, dim);
            rmsnorm(q_a_.data(), q_a_.data(), L.q_a_norm.data(), c.q_lora_rank, c.norm_eps);
            matvec(q_.data(), L.wq_b.data(), q_a_.data(), h * qk, c.q_lora_rank);
        }
        // Compressed KV: [c_kv, k_pe]; c_kv normalised, k_pe one rope key shared by all heads.
        matvec(kv_.data(), L.wkv_a.data(), xn_.data(), c.latent_dim(), dim);
        rmsnorm(kv_.data(), kv_.data(), L.kv_a_norm.data(), lora, c.norm_eps);
        float* k_pe = kv_.data() + lora;
        rope(k_pe, rope_dim, rope_cos_.data(), rope_sin_.data());
        for (size_t head = 0; head < h; ++head) rope(q_.data() + head * qk + nope, rope_dim, rope_cos_.data(), rope_sin_.data());
        // Decompress: k_nope = W_UK c (W_UK = attn_k_b transposed), v = W_UV c.
        const size_t slot = l * size_t(context_) + size_t(pos);
        float* keys = key_cache_.data() + slot * h * qk;
        float* values = value_cache_.data() + slot * h * vd;
        for (size_t head = 0; head < h; ++head) {
            const float* k_b = L.k_b.data() + head * lora * nope;  // [lora][nope]
            float* key = keys + head * qk;
            for (size_t i = 0; i < nope; ++i) {
                float sum = 0;
                for (size_t r = 0; r < lora; ++r) sum += k_b[r * nope + i] * kv_[r];
                key[i] = sum;
            }
            std::copy_n(k_pe, rope_dim, key + nope);
            matvec(values + head * vd, L.v_b.data() + head * vd * lora, kv_.data(), vd, lora);
        }
        // Plain multi-head attention over the decompressed cache.
        const float* layer_keys = key_cache_.data() + l * size_t(context_) * h * qk;
        const float* layer_values = value_cache_.data() + l * size_t(context_) * h * vd;
        for (size_t head = 0; head < h; ++head) {
            const float* q = q_.data() + head * qk;
            for (int32_t t = 0; t <= pos; ++t) {
                const float* k = layer_keys + (size_t(t) * h + head) * qk;
                float dot = 0;
                for (size_t i = 0; i < qk; ++i) dot += q[i] * k[i];
                scores_[size_t(t)] = dot * softmax_scale_;
            }
            const float max = *std::max_element(scores_.begin(), scores_.begin() + pos + 1);
            double sum = 0;
            for (int32_t t = 0; t <= pos; ++t) sum += scores_[size_t(t)] = std::exp(scores_[size_t(t)] - max);
            float* out = att_out_.data() + head * vd;
            std::fill(out, out + vd, 0.0f);
            for (int32_t t = 0; t <= pos; ++t) {
                const float p = float(scores_[size_t(t)] / sum);
                const float* v = layer_values + (size_t(t) * h + head) * vd;
                for (size_t i = 0; i < vd; ++i) out[i] += p * v[i];
            }
        }
        matvec(ffn_out_.data(), L.wo.data(), att_out_.data(), dim, h * vd);
        for (size_t i = 0; i < dim; ++i) x_[i] += ffn_out_[i];

        rmsnorm(xn_.data(), x_.data(), L.ffn_norm.data(), dim, c.norm_eps);
        last_experts_[l].clear();
        if (!c.is_moe_layer(l)) {
            ffn(ffn_out_.data(), xn_.data(), L.w_gate.data(), L.w_up.data(), L.w_down.data(), c.hidden_dim);
            for (size_t i = 0; i < dim; ++i) x_[i] += ffn_out_[i];
            continue;
        }
        matvec(router_logits_.data(), L.router.data(), xn_.data(), c.n_experts, dim);
        const moe_routing routing{c.n_experts, c.n_experts_used, c.norm_topk_prob, float(c.routed_scaling_factor)};
        route_token(routing, router_logits_.data(), router_probs_.data(), expert_ids_.data(), expert_weights_.data());
        const size_t eh = c.expert_hidden_dim;
        for (size_t j = 0; j < c.n_experts_used; ++j) {
            const size_t e = size_t(expert_ids_[j]);
            last_experts_[l].push_back(int32_t(e));
            ffn(ffn_out_.data(), xn_.data(), L.gate_exps.data() + e * eh * dim, L.up_exps.data() + e * eh * dim,
                L.down_exps.data() + e * dim * eh, eh);
            for (size_t i = 0; i < dim; ++i) x_[i] += expert_weights_[j] * ffn_out_[i];
        }
        if (!L.gate_shexp.empty()) {
            ffn(ffn_out_.data(), xn_.data(), L.gate_shexp.data(), L.up_shexp.data(), L.down_shexp.data(),
                c.shared_hidden_dim());
            for (size_t i = 0; i < dim; ++i) x_[i] += ffn_out_[i];
        }
    }
    rmsnorm(x_.data(), x_.data(), output_norm_.data(), dim, c.norm_eps);
    matvec(logits_.data(), output_.data(), x_.data(), c.vocab_size, dim);
    return logits_;
}

}  // namespace kiln
