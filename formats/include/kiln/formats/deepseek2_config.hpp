// Hyper-parameters of a DeepSeek-V2-style model (multi-head latent attention, mixture of experts),
// as stored under deepseek2.* in a .kiln file (see formats/SPEC_deepseek2.md).
#pragma once
#include <cstdint>

#include "kiln/formats/metadata.hpp"

namespace kiln {

// DeepSeek-V2's YaRN RoPE stretch (HF rope_scaling {"type": "yarn", ...}). factor <= 1: none.
struct deepseek2_yarn {
    double factor = 1.0;
    uint64_t original_context_length = 0;  // original_max_position_embeddings
    double beta_fast = 32.0;
    double beta_slow = 1.0;
    double mscale = 1.0;
    double mscale_all_dim = 0.0;

    bool enabled() const { return factor > 1.0; }
    bool operator==(const deepseek2_yarn&) const = default;
};

struct deepseek2_config {
    uint64_t dim = 0;
    uint64_t n_layers = 0;
    uint64_t n_heads = 0;
    uint64_t q_lora_rank = 0;  // 0: no query compression (attn_q), else attn_q_a/attn_q_b
    uint64_t kv_lora_rank = 0;
    uint64_t qk_nope_head_dim = 0;
    uint64_t qk_rope_head_dim = 0;
    uint64_t v_head_dim = 0;
    uint64_t vocab_size = 0;
    uint64_t context_length = 0;
    uint64_t hidden_dim = 0;         // FFN width of the dense layers
    uint64_t n_dense_layers = 0;     // first_k_dense_replace: layers [0, n) are dense
    uint64_t n_experts = 0;          // routed experts (0: every layer dense)
    uint64_t n_experts_used = 0;     // top-k
    uint64_t n_shared_experts = 0;   // fused into one FFN of n_shared_experts * expert_hidden_dim
    uint64_t expert_hidden_dim = 0;  // moe_intermediate_size
    bool norm_topk_prob = false;     // renormalise the top-k weights to sum 1 (else scale them)
    double routed_scaling_factor = 1.0;
    double norm_eps = 1e-6;
    double rope_theta = 10000.0;
    deepseek2_yarn yarn;

    uint64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
    // Width of one cached position (one shared latent "KV head"): c_kv then the rope key.
    uint64_t latent_dim() const { return kv_lora_rank + qk_rope_head_dim; }
    uint64_t shared_hidden_dim() const { return n_shared_experts * expert_hidden_dim; }
    bool is_moe_layer(uint64_t layer) const { return n_experts > 0 && layer >= n_dense_layers; }

    bool operator==(const deepseek2_config&) const = default;

    // Throws kiln::error describing the first impossible value.
    void validate() const;
    void to_metadata(metadata& meta) const;  // also sets general.architecture = "deepseek2"
    static deepseek2_config from_metadata(const metadata& meta);
};

}  // namespace kiln
