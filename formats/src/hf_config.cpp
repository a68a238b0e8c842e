// Parsing a Hugging Face config.json (Llama, Mistral, Qwen2 causal LMs) into kiln's llama_config.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/formats/error.hpp"
#include "kiln/formats/hf_config.hpp"

namespace kiln {
namespace {

using json = nlohmann::json;

class config_reader {
public:
    config_reader(const json& j, const std::filesystem::path& path) : j_(j), path_(path) {}

    bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

    uint64_t u64(const char* key) const {
        if (!has(key)) throw file_error(path_, std::string("\"") + key + "\" is missing");
        return u64_of(j_[key], key);
    }
    uint64_t u64_or(const char* key, uint64_t fallback) const { return has(key) ? u64(key) : fallback; }

    double f64_or(const char* key, double fallback) const {
        if (!has(key)) return fallback;
        if (!j_[key].is_number()) throw file_error(path_, std::string("\"") + key + "\" is not a number");
        return j_[key].get<double>();
    }
    bool bool_or(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        if (!j_[key].is_boolean()) throw file_error(path_, std::string("\"") + key + "\" is not true or false");
        return j_[key].get<bool>();
    }
    std::string string_or(const char* key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        if (!j_[key].is_string()) throw file_error(path_, std::string("\"") + key + "\" is not a string");
        return j_[key].get<std::string>();
    }
    // A token id given as a number or, as Llama 3.1 does for eos, a list whose first entry counts.
    std::optional<int64_t> token_id(const char* key) const {
        if (!has(key)) return std::nullopt;
        const json& v = j_[key].is_array() && !j_[key].empty() ? j_[key][0] : j_[key];
        if (!v.is_number_integer()) throw file_error(path_, std::string("\"") + key + "\" is not a token id");
        return v.get<int64_t>();
    }

    uint64_t u64_of(const json& v, const std::string& key) const {
        if (!v.is_number_unsigned()) throw file_error(path_, "\"" + key + "\" is not a non-negative integer");
        return v.get<uint64_t>();
    }

    const json& j_;
    const std::filesystem::path& path_;
};

std::optional<hf_rope_scaling> parse_rope_scaling(const json& j, const std::filesystem::path& path) {
    if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return std::nullopt;
    const json& rs = j["rope_scaling"];
    if (!rs.is_object()) throw file_error(path, "\"rope_scaling\" is not an object");
    config_reader r(rs, path);
    // Newer configs name the kind "rope_type", older ones "type".
    std::string type = r.string_or("rope_type", r.string_or("type", ""));
    if (type.empty() || type == "default") return std::nullopt;
    if (type != "linear" && type != "llama3")
        throw file_error(path, "unsupported rope_scaling type '" + type + "' (kiln supports linear and llama3)");
    hf_rope_scaling s;
    s.type = type;
    s.factor = r.f64_or("factor", 0.0);
    if (!(s.factor > 0.0)) throw file_error(path, "rope_scaling \"factor\" must be a positive number");
    if (type == "llama3") {
        for (const char* key : {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
            if (!r.has(key)) throw file_error(path, std::string("llama3 rope_scaling has no \"") + key + "\"");
        s.low_freq_factor = r.f64_or("low_freq_factor", 1.0);
        s.high_freq_factor = r.f64_or("high_freq_factor", 1.0);
        s.original_context_length = r.u64("original_max_position_embeddings");
    }
    return s;
}

}  // namespace

hf_model_config parse_hf_config(const std::filesystem::path& config_json) {
    std::ifstream in(config_json, std::ios::binary);
    if (!in) throw file_error(config_json, "cannot open");
    std::stringstream text;
    text << in.rdbuf();
    const json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw file_error(config_json, "malformed JSON");
    if (!j.is_object()) throw file_error(config_json, "is not a JSON object");
    config_reader r(j, config_json);

    hf_model_config c;
    if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
        !j["architectures"][0].is_string())
        throw file_error(config_json, "\"architectures\" does not name the model class");
    c.architecture = j["architectures"][0].get<std::string>();
    const bool is_qwen2 = c.architecture == "Qwen2ForCausalLM";
    if (c.architecture != "LlamaForCausalLM" && c.architecture != "MistralForCausalLM" && !is_qwen2)
        throw file_error(config_json, "unsupported architecture '" + c.architecture +
                                          "' (kiln imports LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
    if (r.string_or("hidden_act", "silu") != "silu")
        throw file_error(config_json, "unsupported hidden_act '" + r.string_or("hidden_act", "") + "' (kiln runs silu)");
    if (r.bool_or("mlp_bias", false)) throw file_error(config_json, "mlp_bias is not supported");

    llama_config& m = c.llama;
    m.dim = r.u64("hidden_size");
    m.hidden_dim = r.u64("intermediate_size");
    m.n_layers = r.u64("num_hidden_layers");
    m.n_heads = r.u64("num_attention_heads");
    m.n_kv_heads = r.u64_or("num_key_value_heads", m.n_heads);
    if (m.n_heads == 0) throw file_error(config_json, "\"num_attention_heads\" is 0");
    m.head_dim = r.u64_or("head_dim", m.dim / m.n_heads);
    m.vocab_size = r.u64("vocab_size");
    m.context_length = r.u64_or("max_position_embeddings", 2048);
    m.norm_eps = r.f64_or("rms_norm_eps", 1e-6);
    m.rope_theta = r.f64_or("rope_theta", 10000.0);
    // HF's rotate-half Q/K row order is what NEOX-style RoPE expects (see load_hf_folder).
    m.rope = rope_style::neox;
    if (r.has("partial_rotary_factor") && r.f64_or("partial_rotary_factor", 1.0) != 1.0)
        throw file_error(config_json, "partial_rotary_factor is not supported");

    c.tie_word_embeddings = r.bool_or("tie_word_embeddings", false);
    // Qwen2 always has q/k/v biases; Llama's attention_bias also adds one to o_proj, which kiln
    // has no tensor for.
    c.qkv_bias = is_qwen2;
    if (!is_qwen2 && r.bool_or("attention_bias", false))
        throw file_error(config_json, "attention_bias (biases on q/k/v/o projections) is not supported");
    c.rope_scaling = parse_rope_scaling(j, config_json);
    if (c.rope_scaling) {
        // The runtime reads the scaling from llama_config; keep it there too.
        llama_rope_scaling& s = m.rope_scaling;
        s.type = c.rope_scaling->type == "llama3" ? rope_scaling_type::llama3 : rope_scaling_type::linear;
        s.factor = c.rope_scaling->factor;
        s.low_freq_factor = c.rope_scaling->low_freq_factor.value_or(s.low_freq_factor);
        s.high_freq_factor = c.rope_scaling->high_freq_factor.value_or(s.high_freq_factor);
        s.original_context_length = c.rope_scaling->original_context_length.value_or(0);
    }
    if (c.architecture == "MistralForCausalLM" && r.has("sliding_window")) c.sliding_window = r.u64("sliding_window");
    if (is_qwen2 && r.bool_or("use_sliding_window", false) && r.has("sliding_window"))
        c.sliding_window = r.u64("sliding_window");
    c.bos_id = r.token_id("bos_token_id");
    c.eos_id = r.token_id("eos_token_id");

    try {
        m.validate();
    } catch (const file_error&) {
        throw;
    } catch (const error& e) {
        throw file_error(config_json, e.what());
    }
    return c;
}

void rope_scaling_to_metadata(const hf_rope_scaling& s, metadata& meta) {
    meta.set("llama.rope_scaling.type", s.type);
    meta.set("llama.rope_scaling.factor", s.factor);
    if (s.low_freq_factor) meta.set("llama.rope_scaling.low_freq_factor", *s.low_freq_factor);
    if (s.high_freq_factor) meta.set("llama.rope_scaling.high_freq_factor", *s.high_freq_factor);
    if (s.original_context_length) meta.set("llama.rope_scaling.original_context_length", *s.original_context_length);
}

}  // namespace kiln
