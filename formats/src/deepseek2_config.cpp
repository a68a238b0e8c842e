// deepseek2_config: validation and the deepseek2.* metadata keys.
#include "kiln/formats/deepseek2_config.hpp"

#include <string>

#include "kiln/formats/error.hpp"

namespace kiln {
namespace {

void require(bool ok, const std::string& problem) {
    if (!ok) throw error("deepseek2: " + problem);
}

void require_size(uint64_t value, uint64_t low, uint64_t limit, const char* name) {
    require(value >= low && value < limit, std::string(name) + " " + std::to_string(value) + " is impossible");
}

}  // namespace

void deepseek2_config::validate() const {
    constexpr uint64_t limit = uint64_t(1) << 24;  // far above any real model, far below overflow
    require_size(dim, 1, limit, "dim");
    require_size(n_layers, 1, 4096, "n_layers");
    require_size(n_heads, 1, 4096, "n_heads");
    require_size(q_lora_rank, 0, limit, "q_lora_rank");
    require_size(kv_lora_rank, 1, limit, "kv_lora_rank");
    require_size(qk_nope_head_dim, 1, 4096, "qk_nope_head_dim");
    require_size(qk_rope_head_dim, 2, 4096, "qk_rope_head_dim");
    require(qk_rope_head_dim % 2 == 0, "qk_rope_head_dim " + std::to_string(qk_rope_head_dim) + " must be even");
    require_size(v_head_dim, 1, 4096, "v_head_dim");
    require_size(vocab_size, 1, limit, "vocab_size");
    require_size(context_length, 1, limit, "context_length");
    require_size(n_dense_layers, 0, n_layers + 1, "n_dense_layers");
    if (n_dense_layers > 0 || n_experts == 0) require_size(hidden_dim, 1, limit, "hidden_dim");
    if (n_experts > 0) {
        require_size(n_experts, 1, 65536, "n_experts");
        require(n_experts_used >= 1 && n_experts_used <= n_experts,
                "n_experts_used " + std::to_string(n_experts_used) + " must be in 1.." + std::to_string(n_experts));
        require_size(expert_hidden_dim, 1, limit, "expert_hidden_dim");
        require_size(n_shared_experts, 0, 65536, "n_shared_experts");
        require(routed_scaling_factor > 0, "routed_scaling_factor must be positive");
    }
    require(norm_eps > 0 && norm_eps < 1, "norm_eps is impossible");
    require(rope_theta > 0, "rope_theta is impossible");
    if (yarn.enabled()) {
        require(yarn.original_context_length > 0, "yarn rope scaling needs original_context_length");
        require(yarn.beta_fast > 0 && yarn.beta_slow > 0, "yarn beta_fast and beta_slow must be positive");
    }
}

void deepseek2_config::to_metadata(metadata& meta) const {
    meta.set("general.architecture", std::string("deepseek2"));
    meta.set("deepseek2.dim", dim);
    meta.set("deepseek2.n_layers", n_layers);
    meta.set("deepseek2.n_heads", n_heads);
    meta.set("deepseek2.q_lora_rank", q_lora_rank);
    meta.set("deepseek2.kv_lora_rank", kv_lora_rank);
    meta.set("deepseek2.qk_nope_head_dim", qk_nope_head_dim);
    meta.set("deepseek2.qk_rope_head_dim", qk_rope_head_dim);
    meta.set("deepseek2.v_head_dim", v_head_dim);
    meta.set("deepseek2.vocab_size", vocab_size);
    meta.set("deepseek2.context_length", context_length);
    meta.set("deepseek2.hidden_dim", hidden_dim);
    meta.set("deepseek2.n_dense_layers", n_dense_layers);
    meta.set("deepseek2.n_experts", n_experts);
    meta.set("deepseek2.n_experts_used", n_experts_used);
    meta.set("deepseek2.n_shared_experts", n_shared_experts);
    meta.set("deepseek2.expert_hidden_dim", expert_hidden_dim);
    meta.set("deepseek2.norm_topk_prob", norm_topk_prob);
    meta.set("deepseek2.routed_scaling_factor", routed_scaling_factor);
    meta.set("deepseek2.norm_eps", norm_eps);
    meta.set("deepseek2.rope_theta", rope_theta);
    if (!yarn.enabled()) return;
    meta.set("deepseek2.rope_scaling.type", std::string("yarn"));
    meta.set("deepseek2.rope_scaling.factor", yarn.factor);
    meta.set("deepseek2.rope_scaling.original_context_length", yarn.original_context_length);
    meta.set("deepseek2.rope_scaling.beta_fast", yarn.beta_fast);
    meta.set("deepseek2.rope_scaling.beta_slow", yarn.beta_slow);
    meta.set("deepseek2.rope_scaling.mscale", yarn.mscale);
    meta.set("deepseek2.rope_scaling.mscale_all_dim", yarn.mscale_all_dim);
}

deepseek2_config deepseek2_config::from_metadata(const metadata& meta) {
    const std::string& arch = meta.get_string("general.architecture");
    if (arch != "deepseek2") throw error("architecture '" + arch + "' is not deepseek2");
    deepseek2_config c;
    c.dim = meta.get_u64("deepseek2.dim");
    c.n_layers = meta.get_u64("deepseek2.n_layers");
    c.n_heads = meta.get_u64("deepseek2.n_heads");
    c.q_lora_rank = meta.get_u64_or("deepseek2.q_lora_rank", 0);
    c.kv_lora_rank = meta.get_u64("deepseek2.kv_lora_rank");
    c.qk_nope_head_dim = meta.get_u64("deepseek2.qk_nope_head_dim");
    c.qk_rope_head_dim = meta.get_u64("deepseek2.qk_rope_head_dim");
    c.v_head_dim = meta.get_u64("deepseek2.v_head_dim");
    c.vocab_size = meta.get_u64("deepseek2.vocab_size");
    c.context_length = meta.get_u64("deepseek2.context_length");
    c.hidden_dim = meta.get_u64_or("deepseek2.hidden_dim", 0);
    c.n_dense_layers = meta.get_u64_or("deepseek2.n_dense_layers", 0);
    c.n_experts = meta.get_u64_or("deepseek2.n_experts", 0);
    c.n_experts_used = meta.get_u64_or("deepseek2.n_experts_used", 0);
    c.n_shared_experts = meta.get_u64_or("deepseek2.n_shared_experts", 0);
    c.expert_hidden_dim = meta.get_u64_or("deepseek2.expert_hidden_dim", 0);
    c.norm_topk_prob = meta.get_bool_or("deepseek2.norm_topk_prob", false);
    c.routed_scaling_factor = meta.get_f64_or("deepseek2.routed_scaling_factor", 1.0);
    c.norm_eps = meta.get_f64("deepseek2.norm_eps");
    c.rope_theta = meta.get_f64_or("deepseek2.rope_theta", 10000.0);
    const std::string type = meta.get_string_or("deepseek2.rope_scaling.type", "none");
    if (type == "yarn") {
        c.yarn.factor = meta.get_f64("deepseek2.rope_scaling.factor");
        c.yarn.original_context_length = meta.get_u64("deepseek2.rope_scaling.original_context_length");
        c.yarn.beta_fast = meta.get_f64_or("deepseek2.rope_scaling.beta_fast", 32.0);
        c.yarn.beta_slow = meta.get_f64_or("deepseek2.rope_scaling.beta_slow", 1.0);
        c.yarn.mscale = meta.get_f64_or("deepseek2.rope_scaling.mscale", 1.0);
        c.yarn.mscale_all_dim = meta.get_f64_or("deepseek2.rope_scaling.mscale_all_dim", 0.0);
    } else if (type != "none") {
        throw error("unsupported deepseek2.rope_scaling.type '" + type + "' (kiln applies yarn)");
    }
    c.validate();
    return c;
}

}  // namespace kiln
