// The GGUF deepseek2 importer (see gguf_deepseek2.hpp). llama.cpp keeps HF's row order for the
// rope parts (it runs them with adjacent-pair RoPE, as kiln does), so no rows are permuted.
#include <map>
#include <string>

#include "kiln/formats/deepseek2_config.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf_deepseek2.hpp"
#include "kiln/formats/gguf_dequant.hpp"
#include "kiln/formats/kiln_file.hpp"

namespace kiln {
namespace {

deepseek2_config read_config(const gguf_file& file, uint64_t vocab_size) {
    const std::string p = "deepseek2.";
    deepseek2_config c;
    c.dim = file.get_u64(p + "embedding_length");
    c.n_layers = file.get_u64(p + "block_count");
    c.n_heads = file.get_u64(p + "attention.head_count");
    c.q_lora_rank = file.get_u64_or(p + "attention.q_lora_rank", 0);
    c.kv_lora_rank = file.get_u64(p + "attention.kv_lora_rank");
    c.qk_rope_head_dim = file.get_u64(p + "rope.dimension_count");
    // Newer (MLA) files describe the latent "KV head" in key_length/value_length and the
    // per-head widths in the *_mla keys; older files have only the per-head widths.
    const uint64_t qk = file.get_u64_or(p + "attention.key_length_mla", file.get_u64(p + "attention.key_length"));
    c.v_head_dim = file.get_u64_or(p + "attention.value_length_mla", file.get_u64(p + "attention.value_length"));
    if (qk <= c.qk_rope_head_dim)
        throw file_error(file.path(), "attention.key_length " + std::to_string(qk) + " leaves no non-rope part");
    c.qk_nope_head_dim = qk - c.qk_rope_head_dim;
    c.vocab_size = vocab_size;
    c.context_length = file.get_u64_or(p + "context_length", 4096);
    c.hidden_dim = file.get_u64(p + "feed_forward_length");
    c.n_experts = file.get_u64_or(p + "expert_count", 0);
    c.n_dense_layers = c.n_experts ? file.get_u64_or(p + "leading_dense_block_count", 0) : c.n_layers;
    if (c.n_experts) {
        c.n_experts_used = file.get_u64(p + "expert_used_count");
        c.n_shared_experts = file.get_u64_or(p + "expert_shared_count", 0);
        c.expert_hidden_dim = file.get_u64(p + "expert_feed_forward_length");
        // llama.cpp's gating function: 1 softmax (DeepSeek-V2), 2 sigmoid (V3).
        if (file.get_u64_or(p + "expert_gating_func", 1) != 1)
            throw file_error(file.path(), "expert_gating_func is not softmax (kiln routes DeepSeek-V2 style)");
    }
    c.norm_topk_prob = file.get_bool_or(p + "expert_weights_norm", false);
    c.routed_scaling_factor = file.get_f64_or(p + "expert_weights_scale", 1.0);
    c.norm_eps = file.get_f64_or(p + "attention.layer_norm_rms_epsilon", 1e-6);
    c.rope_theta = file.get_f64_or(p + "rope.freq_base", 10000.0);
    const std::string scaling = file.get_string_or(p + "rope.scaling.type", "none");
    if (scaling == "yarn") {
        c.yarn.factor = file.get_f64_or(p + "rope.scaling.factor", 1.0);
        c.yarn.original_context_length = file.get_u64(p + "rope.scaling.original_context_length");
        c.yarn.beta_fast = file.get_f64_or(p + "rope.scaling.yarn_beta_fast", 32.0);
        c.yarn.beta_slow = file.get_f64_or(p + "rope.scaling.yarn_beta_slow", 1.0);
        // llama.cpp keeps only 0.1 * mscale_all_dim (yarn_log_multiplier) and assumes
        // mscale == mscale_all_dim (as in every DeepSeek-V2 release): cos/sin are then unscaled.
        const double multiplier = file.get_f64_or(p + "rope.scaling.yarn_log_multiplier", 0.0);
        c.yarn.mscale_all_dim = multiplier / 0.1;
        c.yarn.mscale = multiplier != 0 ? c.yarn.mscale_all_dim : 1.0;
    } else if (scaling != "none") {
        throw file_error(file.path(), "rope scaling type '" + scaling + "' is not supported for deepseek2 (kiln applies yarn)");
    }
    try {
        c.validate();
    } catch (const error& e) {
        throw file_error(file.path(), e.what());
    }
    return c;
}

// Every tensor kiln's deepseek2 needs, with its shape (attn_k_b/attn_v_b included).
std::map<std::string, std::vector<uint64_t>> expected_shapes(const deepseek2_config& c) {
    std::map<std::string, std::vector<uint64_t>> s;
    const uint64_t H = c.n_heads;
    s["token_embd"] = {c.vocab_size, c.dim};
    s["output_norm"] = {c.dim};
    s["output"] = {c.vocab_size, c.dim};
    for (uint64_t l = 0; l < c.n_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        s[p + "attn_norm"] = {c.dim};
        if (c.q_lora_rank == 0) {
            s[p + "attn_q"] = {H * c.qk_head_dim(), c.dim};
        } else {
            s[p + "attn_q_a"] = {c.q_lora_rank, c.dim};
            s[p + "attn_q_a_norm"] = {c.q_lora_rank};
            s[p + "attn_q_b"] = {H * c.qk_head_dim(), c.q_lora_rank};
        }
        s[p + "attn_kv_a_mqa"] = {c.latent_dim(), c.dim};
        s[p + "attn_kv_a_norm"] = {c.kv_lora_rank};
        s[p + "attn_k_b"] = {H, c.kv_lora_rank, c.qk_nope_head_dim};
        s[p + "attn_v_b"] = {H, c.v_head_dim, c.kv_lora_rank};
        s[p + "attn_output"] = {c.dim, H * c.v_head_dim};
        s[p + "ffn_norm"] = {c.dim};
        if (!c.is_moe_layer(l)) {
            s[p + "ffn_gate"] = s[p + "ffn_up"] = {c.hidden_dim, c.dim};
            s[p + "ffn_down"] = {c.dim, c.hidden_dim};
            continue;
        }
        s[p + "ffn_gate_inp"] = {c.n_experts, c.dim};
        s[p + "ffn_gate_exps"] = s[p + "ffn_up_exps"] = {c.n_experts, c.expert_hidden_dim, c.dim};
        s[p + "ffn_down_exps"] = {c.n_experts, c.dim, c.expert_hidden_dim};
        if (c.n_shared_experts) {
            s[p + "ffn_gate_shexp"] = s[p + "ffn_up_shexp"] = {c.shared_hidden_dim(), c.dim};
            s[p + "ffn_down_shexp"] = {c.dim, c.shared_hidden_dim()};
        }
    }
    return s;
}

}  // namespace

model_source load_gguf_deepseek2(const gguf_file& file) {
    const std::filesystem::path& path = file.path();
    if (!file.find("tokenizer.ggml.model")) throw file_error(path, "no tokenizer (tokenizer.ggml.model is missing)");
    const gguf_tensor_info* embedding = file.find_tensor("token_embd.weight");
    if (!embedding || embedding->dims.size() != 2) throw file_error(path, "token_embd.weight is missing or not a matrix");
    const deepseek2_config c = read_config(file, embedding->dims[1]);
    vocabulary vocab = vocabulary_from_gguf(file);
    if (vocab.size() > c.vocab_size)
        throw file_error(path, "the tokenizer has " + std::to_string(vocab.size()) + " tokens but token_embd only " +
                                   std::to_string(c.vocab_size) + " rows");
    vocab.pad_to(c.vocab_size);

    model_source source;
    c.to_metadata(source.meta);
    vocab.to_metadata(source.meta);
    source.meta.set("general.source", std::string("gguf (deepseek2)"));
    if (file.find("general.name")) source.meta.set("general.name", file.get_string("general.name"));

    auto expected = expected_shapes(c);
    auto reader = [&file](const gguf_tensor_info& info) {
        return [file, info](std::span<float> out) { file.read_f32(info, out); };
    };
    auto check_type = [&](const gguf_tensor_info& info) {
        const auto type = ggml_type_lookup(info.type);
        if (!type || !type->decodable)
            throw file_error(path, "tensor '" + info.name + "' has type " + std::string(info.type_name()) +
                                       ", which kiln cannot decode");
        return std::string(type->name);
    };
    const uint64_t H = c.n_heads, nope = c.qk_nope_head_dim, vd = c.v_head_dim, lora = c.kv_lora_rank;
    for (const auto& info : file.tensors()) {
        const std::string suffix = ".weight";
        if (info.name == "rope_freqs.weight") continue;  // kiln computes YaRN itself
        if (!info.name.ends_with(suffix)) throw file_error(path, "unexpected tensor '" + info.name + "' for deepseek2");
        const std::string name = info.name.substr(0, info.name.size() - suffix.size());
        const std::string source_type = check_type(info);
        if (name.ends_with(".attn_kv_b")) {
            // Older files: kv_b combined [H*(nope+v), kv_lora]; split and transpose as HF's.
            const std::string block = name.substr(0, name.size() - std::string("attn_kv_b").size());
            if (file.find_tensor(block + "attn_k_b.weight")) continue;  // newer files carry both
            const std::vector<uint64_t> want{H * (nope + vd), lora};
            if (info.shape() != want)
                throw file_error(path, "tensor '" + info.name + "' has shape " + shape_string(info.shape()) +
                                           ", the model needs " + shape_string(want));
            auto read = reader(info);
            source.tensors.push_back({block + "attn_k_b", {H, lora, nope}, source_type, [read, H, nope, vd, lora](std::span<float> out) {
                std::vector<float> all(H * (nope + vd) * lora);
                read(all);
                for (uint64_t h = 0; h < H; ++h)
                    for (uint64_t i = 0; i < nope; ++i)
                        for (uint64_t r = 0; r < lora; ++r)
                            out[(h * lora + r) * nope + i] = all[(h * (nope + vd) + i) * lora + r];
            }});
            source.tensors.push_back({block + "attn_v_b", {H, vd, lora}, source_type, [read, H, nope, vd, lora](std::span<float> out) {
                std::vector<float> all(H * (nope + vd) * lora);
                read(all);
                for (uint64_t h = 0; h < H; ++h)
                    std::copy_n(all.begin() + long((h * (nope + vd) + nope) * lora), vd * lora,
                                out.begin() + long(h * vd * lora));
            }});
            expected.erase(block + "attn_k_b");
            expected.erase(block + "attn_v_b");
            continue;
        }
        auto it = expected.find(name);
        if (it == expected.end()) throw file_error(path, "unexpected tensor '" + info.name + "' for deepseek2");
        if (info.shape() != it->second)
            throw file_error(path, "tensor '" + info.name + "' has shape " + shape_string(info.shape()) +
                                       ", the model needs " + shape_string(it->second));
        expected.erase(it);
        source.tensors.push_back({name, info.shape(), source_type, reader(info)});
    }
    if (!expected.empty()) throw file_error(path, "tensor '" + expected.begin()->first + ".weight' is missing");
    return source;
}

}  // namespace kiln
