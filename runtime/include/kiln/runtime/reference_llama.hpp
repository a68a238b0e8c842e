// The reference forward pass: plain f32 code for the llama architecture, kept forever as the
// oracle that every fast path is tested against. Readable first; speed does not matter here.
#pragma once
#include <memory>
#include <vector>

#include "kiln/runtime/language_model.hpp"
#include "kiln/runtime/model.hpp"

namespace kiln {

class reference_llama final : public language_model {
public:
    // Dequantizes every weight to f32 once. context_length 0 = the model's own.
    explicit reference_llama(std::shared_ptr<const model> m, int32_t context_length = 0);

    std::span<const float> forward(int32_t token, int32_t pos) override;
    int32_t context_length() const override { return context_; }
    int32_t vocab_size() const override { return static_cast<int32_t>(config_.vocab_size); }

private:
    struct layer {
        std::vector<float> attn_norm, wq, wk, wv, wo, bq, bk, bv;  // b*: empty when the model has no bias
        std::vector<float> ffn_norm, w_gate, w_up, w_down;
    };

    std::shared_ptr<const model> model_;
    llama_config config_;
    int32_t context_;
    std::vector<float> token_embd_, output_norm_, output_;
    std::vector<layer> layers_;
    // KV cache: [layer][position][kv_dim].
    std::vector<float> key_cache_, value_cache_;
    // Activations of the current position.
    std::vector<float> x_, xb_, q_, k_, v_, att_out_, scores_, gate_, up_, logits_;
    std::vector<float> rope_cos_, rope_sin_;  // angles of the current position
};

}  // namespace kiln
