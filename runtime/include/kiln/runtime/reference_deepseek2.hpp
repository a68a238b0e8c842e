// The reference deepseek2 forward pass: plain f32 code, multi-head latent attention computed the
// textbook way (c_kv decompressed into per-head keys and values, cached as such, full softmax)
// and mixture-of-experts by the same routing the fast pass uses. The oracle of fast_deepseek2;
// readable first, speed does not matter, every weight is dequantized once at construction.
#pragma once
#include <memory>
#include <vector>

#include "kiln/runtime/language_model.hpp"
#include "kiln/runtime/model.hpp"

namespace kiln {

class reference_deepseek2 final : public language_model {
public:
    // context_length 0 = the model's own.
    explicit reference_deepseek2(std::shared_ptr<const model> m, int32_t context_length = 0);

    std::span<const float> forward(int32_t token, int32_t pos) override;
    int32_t context_length() const override { return context_; }
    int32_t vocab_size() const override { return static_cast<int32_t>(config_.vocab_size); }

    // The experts the last forward chose in each MoE layer, [layer][k] (empty rows for dense layers).
    const std::vector<std::vector<int32_t>>& last_experts() const { return last_experts_; }

private:
    struct layer {
        std::vector<float> attn_norm, wq, wq_a, q_a_norm, wq_b, wkv_a, kv_a_norm, k_b, v_b, wo;
        std::vector<float> ffn_norm, w_gate, w_up, w_down;           // dense layers
        std::vector<float> router, gate_exps, up_exps, down_exps;    // MoE layers
        std::vector<float> gate_shexp, up_shexp, down_shexp;         // empty without shared experts
    };
    // x += FFN(xn) of width `hidden` with weights at the given offsets.
    void ffn(float* out, const float* xn, const float* gate, const float* up, const float* down, size_t hidden);

    std::shared_ptr<const model> model_;
    deepseek2_config config_;
    int32_t context_;
    float softmax_scale_;
    std::vector<float> token_embd_, output_norm_, output_;
    std::vector<layer> layers_;
    // Decompressed cache: keys [layer][position][head][qk_head_dim], values [...][head][v_head_dim].
    std::vector<float> key_cache_, value_cache_;
    std::vector<float> x_, xn_, q_, q_a_, kv_, att_out_, scores_, hidden_, up_, ffn_out_, logits_;
    std::vector<float> router_logits_, router_probs_, expert_weights_;
    std::vector<int32_t> expert_ids_;
    std::vector<std::vector<int32_t>> last_experts_;
    std::vector<float> rope_cos_, rope_sin_;
};

}  // namespace kiln
