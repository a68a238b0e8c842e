// llama_config: validation and the llama.* metadata keys.
#include "kiln/formats/model_config.hpp"

#include "kiln/formats/error.hpp"

namespace kiln {
namespace {

void require(bool ok, const std::string& problem) {
    if (!ok) throw error(problem);
}

void validate_rope_scaling(const llama_rope_scaling& s) {
    if (s.type == rope_scaling_type::none) return;
    require(s.factor > 0, "rope_scaling factor must be positive");
    if (s.type != rope_scaling_type::llama3) return;
    require(s.original_context_length > 0, "llama3 rope_scaling needs original_context_length");
    require(s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor,
            "llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor");
}

// Absent keys mean no scaling, so files written before scaling existed read as they always did.
llama_rope_scaling rope_scaling_from_metadata(const metadata& meta) {
    llama_rope_scaling s;
    const std::string type = meta.get_string_or("llama.rope_scaling.type", "none");
    if (type == "none") return s;
    if (type == "linear") s.type = rope_scaling_type::linear;
    else if (type == "llama3") s.type = rope_scaling_type::llama3;
    else throw error("unsupported llama.rope_scaling.type '" + type + "' (kiln applies linear and llama3)");
    s.factor = meta.get_f64("llama.rope_scaling.factor");
    if (s.type == rope_scaling_type::llama3) {
        s.low_freq_factor = meta.get_f64("llama.rope_scaling.low_freq_factor");
        s.high_freq_factor = meta.get_f64("llama.rope_scaling.high_freq_factor");
        s.original_context_length = meta.get_u64("llama.rope_scaling.original_context_length");
    }
    return s;
}

}  // namespace

void llama_config::validate() const {
    constexpr uint64_t limit = uint64_t(1) << 24;  // far above any real model, far below overflow
    require(dim > 0 && dim < limit, "dim " + std::to_string(dim) + " is impossible");
    require(hidden_dim > 0 && hidden_dim < limit, "hidden_dim " + std::to_string(hidden_dim) + " is impossible");
    require(n_layers > 0 && n_layers < 4096, "n_layers " + std::to_string(n_layers) + " is impossible");
    require(n_heads > 0 && n_heads < 4096, "n_heads " + std::to_string(n_heads) + " is impossible");
    require(n_kv_heads > 0 && n_kv_heads <= n_heads, "n_kv_heads " + std::to_string(n_kv_heads) + " is impossible");
    require(n_heads % n_kv_heads == 0, "n_kv_heads " + std::to_string(n_kv_heads) + " does not divide n_heads " +
                                           std::to_string(n_heads));
    require(head_dim > 0 && head_dim % 2 == 0 && head_dim < 4096,
            "head_dim " + std::to_string(head_dim) + " is impossible (must be even)");
    require(vocab_size > 0 && vocab_size < limit, "vocab_size " + std::to_string(vocab_size) + " is impossible");
    require(context_length > 0 && context_length < limit,
            "context_length " + std::to_string(context_length) + " is impossible");
    require(norm_eps > 0 && norm_eps < 1, "norm_eps is impossible");
    require(rope_theta > 0, "rope_theta is impossible");
    validate_rope_scaling(rope_scaling);
}

void llama_config::to_metadata(metadata& meta) const {
    meta.set("general.architecture", std::string("llama"));
    meta.set("llama.dim", dim);
    meta.set("llama.hidden_dim", hidden_dim);
    meta.set("llama.n_layers", n_layers);
    meta.set("llama.n_heads", n_heads);
    meta.set("llama.n_kv_heads", n_kv_heads);
    meta.set("llama.head_dim", head_dim);
    meta.set("llama.vocab_size", vocab_size);
    meta.set("llama.context_length", context_length);
    meta.set("llama.norm_eps", norm_eps);
    meta.set("llama.rope_theta", rope_theta);
    meta.set("llama.rope_style", std::string(rope == rope_style::neox ? "neox" : "interleaved"));
    if (rope_scaling.type == rope_scaling_type::none) return;
    const bool llama3 = rope_scaling.type == rope_scaling_type::llama3;
    meta.set("llama.rope_scaling.type", std::string(llama3 ? "llama3" : "linear"));
    meta.set("llama.rope_scaling.factor", rope_scaling.factor);
    if (!llama3) return;
    meta.set("llama.rope_scaling.low_freq_factor", rope_scaling.low_freq_factor);
    meta.set("llama.rope_scaling.high_freq_factor", rope_scaling.high_freq_factor);
    meta.set("llama.rope_scaling.original_context_length", rope_scaling.original_context_length);
}

llama_config llama_config::from_metadata(const metadata& meta) {
    const std::string& arch = meta.get_string("general.architecture");
    if (arch != "llama") throw error("unsupported architecture '" + arch + "'");
    llama_config c;
    c.dim = meta.get_u64("llama.dim");
    c.hidden_dim = meta.get_u64("llama.hidden_dim");
    c.n_layers = meta.get_u64("llama.n_layers");
    c.n_heads = meta.get_u64("llama.n_heads");
    c.n_kv_heads = meta.get_u64("llama.n_kv_heads");
    c.head_dim = meta.get_u64_or("llama.head_dim", c.n_heads ? c.dim / c.n_heads : 0);
    c.vocab_size = meta.get_u64("llama.vocab_size");
    c.context_length = meta.get_u64("llama.context_length");
    c.norm_eps = meta.get_f64("llama.norm_eps");
    c.rope_theta = meta.get_f64_or("llama.rope_theta", 10000.0);
    const std::string style = meta.get_string_or("llama.rope_style", "interleaved");
    if (style == "neox") c.rope = rope_style::neox;
    else if (style == "interleaved") c.rope = rope_style::interleaved;
    else throw error("unknown llama.rope_style '" + style + "'");
    c.rope_scaling = rope_scaling_from_metadata(meta);
    c.validate();
    return c;
}

}  // namespace kiln
