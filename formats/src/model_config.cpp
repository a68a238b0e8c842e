// llama_config: validation and the llama.* metadata keys.
#include "kiln/formats/model_config.hpp"

#include "kiln/formats/error.hpp"

namespace kiln {
namespace {

void require(bool ok, const std::string& problem) {
    if (!ok) throw error(problem);
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
    c.validate();
    return c;
}

}  // namespace kiln
