// The Hugging Face DeepseekV2ForCausalLM importer (see hf_deepseek2.hpp).
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "kiln/formats/error.hpp"
#include "kiln/formats/hf_deepseek2.hpp"
#include "kiln/formats/kiln_file.hpp"
#include "kiln/formats/safetensors.hpp"

namespace kiln {
namespace {

using json = nlohmann::json;

json read_config(const std::filesystem::path& config_json) {
    std::ifstream in(config_json);
    if (!in) throw file_error(config_json, "cannot be opened");
    try {
        return json::parse(in);
    } catch (const std::exception& e) {
        throw file_error(config_json, std::string("is not valid JSON: ") + e.what());
    }
}

// Typed fields of config.json; a missing or mistyped field names itself.
struct fields {
    const json& j;
    const std::filesystem::path& path;

    bool present(const char* key) const { return j.contains(key) && !j[key].is_null(); }
    uint64_t u64(const char* key) const {
        if (!present(key) || !j[key].is_number_unsigned())
            throw file_error(path, std::string("\"") + key + "\" is missing or not a non-negative integer");
        return j[key].get<uint64_t>();
    }
    uint64_t u64_or(const char* key, uint64_t fallback) const { return present(key) ? u64(key) : fallback; }
    double f64_or(const char* key, double fallback) const {
        if (!present(key)) return fallback;
        if (!j[key].is_number()) throw file_error(path, std::string("\"") + key + "\" is not a number");
        return j[key].get<double>();
    }
    std::string string_or(const char* key, const std::string& fallback) const {
        if (!present(key)) return fallback;
        if (!j[key].is_string()) throw file_error(path, std::string("\"") + key + "\" is not a string");
        return j[key].get<std::string>();
    }
    bool bool_or(const char* key, bool fallback) const {
        if (!present(key)) return fallback;
        if (!j[key].is_boolean()) throw file_error(path, std::string("\"") + key + "\" is not true or false");
        return j[key].get<bool>();
    }
};

std::optional<std::string> architecture_of(const json& j) {
    if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
        !j["architectures"][0].is_string())
        return std::nullopt;
    return j["architectures"][0].get<std::string>();
}

// The folder's safetensors, each tensor checked for dtype and shape when first used.
class hf_weights {
public:
    explicit hf_weights(const std::filesystem::path& dir) : dir_(dir), set_(safetensors_set::open_folder(dir)) {}

    // The tensor `name` of the expected shape, as a reader of its f32 values.
    std::function<void(std::span<float>)> reader(const std::string& name, const std::vector<uint64_t>& shape) {
        auto file = set_.file_of(name);
        if (!file) throw file_error(dir_, "tensor '" + name + "' is missing");
        const safetensors_tensor& info = *file->find(name);
        if (info.dtype != "F32" && info.dtype != "F16" && info.dtype != "BF16")
            throw file_error(file->path(), "tensor '" + name + "' has dtype " + info.dtype +
                                               "; kiln imports F32, F16 and BF16");
        if (info.shape != shape)
            throw file_error(file->path(), "tensor '" + name + "' has shape " + shape_string(info.shape) +
                                               ", config.json implies " + shape_string(shape));
        used_.insert(name);
        return [file, info](std::span<float> out) { file->read_f32(info, out); };
    }
    bool has(const std::string& name) const { return set_.file_of(name) != nullptr; }
    // Every tensor of the folder must have been used (or be one kiln recomputes).
    void check_all_used() const {
        for (const std::string& name : set_.names())
            if (!used_.count(name) && !name.ends_with("rotary_emb.inv_freq"))
                throw file_error(dir_, "unexpected tensor '" + name + "' for DeepseekV2ForCausalLM");
    }

private:
    std::filesystem::path dir_;
    safetensors_set set_;
    std::set<std::string> used_;
};

}  // namespace

bool hf_folder_is_deepseek2(const std::filesystem::path& dir) {
    std::ifstream in(dir / "config.json");
    if (!in) return false;
    const json j = json::parse(in, nullptr, false);
    if (j.is_discarded()) return false;
    const auto arch = architecture_of(j);
    return arch && *arch == "DeepseekV2ForCausalLM";
}

deepseek2_config parse_hf_deepseek2_config(const std::filesystem::path& config_json) {
    const json j = read_config(config_json);
    const fields f{j, config_json};
    deepseek2_config c;
    c.dim = f.u64("hidden_size");
    c.n_layers = f.u64("num_hidden_layers");
    c.n_heads = f.u64("num_attention_heads");
    c.q_lora_rank = f.u64_or("q_lora_rank", 0);  // null in DeepSeek-V2-Lite
    c.kv_lora_rank = f.u64("kv_lora_rank");
    c.qk_nope_head_dim = f.u64("qk_nope_head_dim");
    c.qk_rope_head_dim = f.u64("qk_rope_head_dim");
    c.v_head_dim = f.u64("v_head_dim");
    c.vocab_size = f.u64("vocab_size");
    c.context_length = f.u64_or("max_position_embeddings", 4096);
    c.hidden_dim = f.u64("intermediate_size");
    c.n_experts = f.u64_or("n_routed_experts", 0);
    c.n_dense_layers = c.n_experts ? std::min(f.u64_or("first_k_dense_replace", 0), c.n_layers) : c.n_layers;
    if (c.n_experts) {
        c.n_experts_used = f.u64("num_experts_per_tok");
        c.n_shared_experts = f.u64_or("n_shared_experts", 0);
        c.expert_hidden_dim = f.u64("moe_intermediate_size");
        if (f.u64_or("moe_layer_freq", 1) != 1)
            throw file_error(config_json, "\"moe_layer_freq\" other than 1 is not supported");
        const std::string method = f.string_or("topk_method", "greedy");
        if (method != "greedy")
            throw file_error(config_json, "\"topk_method\" '" + method + "' is not supported (kiln routes greedy top-k)");
        const std::string scoring = f.string_or("scoring_func", "softmax");
        if (scoring != "softmax")
            throw file_error(config_json, "\"scoring_func\" '" + scoring + "' is not supported (kiln routes by softmax)");
    }
    c.norm_topk_prob = f.bool_or("norm_topk_prob", false);
    c.routed_scaling_factor = f.f64_or("routed_scaling_factor", 1.0);
    c.norm_eps = f.f64_or("rms_norm_eps", 1e-6);
    c.rope_theta = f.f64_or("rope_theta", 10000.0);
    if (f.bool_or("attention_bias", false)) throw file_error(config_json, "\"attention_bias\" true is not supported");
    if (f.bool_or("tie_word_embeddings", false))
        throw file_error(config_json, "\"tie_word_embeddings\" true is not supported for deepseek2");
    if (f.present("rope_scaling")) {
        const json& r = j["rope_scaling"];
        if (!r.is_object()) throw file_error(config_json, "\"rope_scaling\" is not an object");
        const fields rf{r, config_json};
        const std::string type = rf.string_or("type", rf.string_or("rope_type", ""));
        if (type != "yarn")
            throw file_error(config_json, "rope_scaling type '" + type + "' is not supported for deepseek2 (kiln applies yarn)");
        c.yarn.factor = rf.f64_or("factor", 1.0);
        c.yarn.original_context_length = rf.u64("original_max_position_embeddings");
        c.yarn.beta_fast = rf.f64_or("beta_fast", 32.0);
        c.yarn.beta_slow = rf.f64_or("beta_slow", 1.0);
        c.yarn.mscale = rf.f64_or("mscale", 1.0);
        c.yarn.mscale_all_dim = rf.f64_or("mscale_all_dim", 0.0);
    }
    try {
        c.validate();
    } catch (const error& e) {
        throw file_error(config_json, e.what());
    }
    return c;
}

model_source load_hf_deepseek2_folder(const std::filesystem::path& dir,
                                      const std::function<vocabulary(uint64_t)>& vocabulary_of) {
    const deepseek2_config c = parse_hf_deepseek2_config(dir / "config.json");
    auto weights = std::make_shared<hf_weights>(dir);
    model_source source;
    c.to_metadata(source.meta);
    vocabulary_of(c.vocab_size).to_metadata(source.meta);
    source.meta.set("general.source", std::string("huggingface (DeepseekV2ForCausalLM)"));

    auto add = [&](std::string name, std::vector<uint64_t> shape, std::function<void(std::span<float>)> read) {
        source.tensors.push_back({std::move(name), std::move(shape), "hf", std::move(read)});
    };
    // A tensor copied as it is (HF rows are already in kiln's order, see SPEC_deepseek2.md).
    auto same = [&](const std::string& kiln_name, const std::string& hf_name, std::vector<uint64_t> shape) {
        add(kiln_name, shape, weights->reader(hf_name, shape));
    };
    // Several HF matrices of one shape stacked as the slices of one 3-D tensor (experts).
    auto stacked = [&](const std::string& kiln_name, const std::vector<std::string>& hf_names, uint64_t rows,
                       uint64_t cols) {
        std::vector<std::function<void(std::span<float>)>> readers;
        for (const std::string& n : hf_names) readers.push_back(weights->reader(n, {rows, cols}));
        add(kiln_name, {uint64_t(hf_names.size()), rows, cols}, [readers, rows, cols](std::span<float> out) {
            for (size_t e = 0; e < readers.size(); ++e) readers[e](out.subspan(e * rows * cols, rows * cols));
        });
    };

    const uint64_t H = c.n_heads, nope = c.qk_nope_head_dim, vd = c.v_head_dim, lora = c.kv_lora_rank;
    same("token_embd", "model.embed_tokens.weight", {c.vocab_size, c.dim});
    for (uint64_t l = 0; l < c.n_layers; ++l) {
        const std::string hf = "model.layers." + std::to_string(l) + ".", p = "blk." + std::to_string(l) + ".";
        same(p + "attn_norm", hf + "input_layernorm.weight", {c.dim});
        if (c.q_lora_rank == 0) {
            same(p + "attn_q", hf + "self_attn.q_proj.weight", {H * c.qk_head_dim(), c.dim});
        } else {
            same(p + "attn_q_a", hf + "self_attn.q_a_proj.weight", {c.q_lora_rank, c.dim});
            same(p + "attn_q_a_norm", hf + "self_attn.q_a_layernorm.weight", {c.q_lora_rank});
            same(p + "attn_q_b", hf + "self_attn.q_b_proj.weight", {H * c.qk_head_dim(), c.q_lora_rank});
        }
        same(p + "attn_kv_a_mqa", hf + "self_attn.kv_a_proj_with_mqa.weight", {c.latent_dim(), c.dim});
        same(p + "attn_kv_a_norm", hf + "self_attn.kv_a_layernorm.weight", {lora});
        // kv_b_proj: per head nope rows of W_UK then v rows of W_UV, each [.., kv_lora]. kiln
        // stores W_UK transposed per head (q_nope -> latent is then a plain matmul) and W_UV as is.
        auto kv_b = weights->reader(hf + "self_attn.kv_b_proj.weight", {H * (nope + vd), lora});
        add(p + "attn_k_b", {H, lora, nope}, [kv_b, H, nope, vd, lora](std::span<float> out) {
            std::vector<float> all(H * (nope + vd) * lora);
            kv_b(all);
            for (uint64_t h = 0; h < H; ++h)
                for (uint64_t i = 0; i < nope; ++i)
                    for (uint64_t r = 0; r < lora; ++r)
                        out[(h * lora + r) * nope + i] = all[(h * (nope + vd) + i) * lora + r];
        });
        add(p + "attn_v_b", {H, vd, lora}, [kv_b, H, nope, vd, lora](std::span<float> out) {
            std::vector<float> all(H * (nope + vd) * lora);
            kv_b(all);
            for (uint64_t h = 0; h < H; ++h)
                std::copy_n(all.begin() + long((h * (nope + vd) + nope) * lora), vd * lora,
                            out.begin() + long(h * vd * lora));
        });
        same(p + "attn_output", hf + "self_attn.o_proj.weight", {c.dim, H * vd});
        same(p + "ffn_norm", hf + "post_attention_layernorm.weight", {c.dim});
        if (!c.is_moe_layer(l)) {
            same(p + "ffn_gate", hf + "mlp.gate_proj.weight", {c.hidden_dim, c.dim});
            same(p + "ffn_up", hf + "mlp.up_proj.weight", {c.hidden_dim, c.dim});
            same(p + "ffn_down", hf + "mlp.down_proj.weight", {c.dim, c.hidden_dim});
            continue;
        }
        same(p + "ffn_gate_inp", hf + "mlp.gate.weight", {c.n_experts, c.dim});
        std::vector<std::string> gate, up, down;
        for (uint64_t e = 0; e < c.n_experts; ++e) {
            const std::string x = hf + "mlp.experts." + std::to_string(e) + ".";
            gate.push_back(x + "gate_proj.weight");
            up.push_back(x + "up_proj.weight");
            down.push_back(x + "down_proj.weight");
        }
        stacked(p + "ffn_gate_exps", gate, c.expert_hidden_dim, c.dim);
        stacked(p + "ffn_up_exps", up, c.expert_hidden_dim, c.dim);
        stacked(p + "ffn_down_exps", down, c.dim, c.expert_hidden_dim);
        if (c.n_shared_experts > 0) {
            const uint64_t sh = c.shared_hidden_dim();
            same(p + "ffn_gate_shexp", hf + "mlp.shared_experts.gate_proj.weight", {sh, c.dim});
            same(p + "ffn_up_shexp", hf + "mlp.shared_experts.up_proj.weight", {sh, c.dim});
            same(p + "ffn_down_shexp", hf + "mlp.shared_experts.down_proj.weight", {c.dim, sh});
        }
    }
    same("output_norm", "model.norm.weight", {c.dim});
    same("output", "lm_head.weight", {c.vocab_size, c.dim});
    weights->check_all_used();
    return source;
}

}  // namespace kiln
