// Importing a llama-family GGUF model (architectures "llama" and "qwen2") as a model_source:
// hyper-parameters from <arch>.* keys, the embedded tokenizer, and lazily decoded tensors.
#include <optional>
#include <string>

#include "hf_gguf_shapes.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"
#include "kiln/formats/gguf_deepseek2.hpp"
#include "kiln/formats/model_config.hpp"

namespace kiln {
namespace {

// GGUF tensor name -> kiln name: "token_embd.weight" -> "token_embd", "blk.3.attn_q.bias" ->
// "blk.3.attn_q_bias". nullopt for names kiln does not know.
std::optional<std::string> kiln_tensor_name(const std::string& gguf_name) {
    static const char* const top_level[] = {"token_embd", "output_norm", "output", "rope_freqs"};
    for (const char* name : top_level)
        if (gguf_name == std::string(name) + ".weight") return std::string(name);
    if (gguf_name.rfind("blk.", 0) != 0) return std::nullopt;
    const size_t dot = gguf_name.find('.', 4);
    if (dot == std::string::npos || dot == 4) return std::nullopt;
    for (size_t i = 4; i < dot; ++i)
        if (gguf_name[i] < '0' || gguf_name[i] > '9') return std::nullopt;
    const std::string block = gguf_name.substr(0, dot + 1);  // "blk.N."
    const std::string rest = gguf_name.substr(dot + 1);
    static const char* const weights[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                          "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
    for (const char* name : weights)
        if (rest == std::string(name) + ".weight") return block + name;
    static const char* const biases[] = {"attn_q", "attn_k", "attn_v"};
    for (const char* name : biases)
        if (rest == std::string(name) + ".bias") return block + name + "_bias";
    return std::nullopt;
}

// The rope scaling a GGUF file declares, stored under the keys the runtime reads
// (llama.rope_scaling.*). Llama 3 style files carry a rope_freqs tensor instead.
void import_rope_scaling(const gguf_file& file, const std::string& arch, metadata& meta) {
    std::string type = file.get_string_or(arch + ".rope.scaling.type", "");
    double factor = file.get_f64_or(arch + ".rope.scaling.factor", 0.0);
    if (type.empty() && file.find(arch + ".rope.scale_linear")) {  // the older single key
        type = "linear";
        factor = file.get_f64_or(arch + ".rope.scale_linear", 1.0);
    }
    if (type.empty() || type == "none") return;
    if (type != "linear")
        throw file_error(file.path(), "unsupported rope scaling type '" + type + "' (kiln supports linear)");
    if (!(factor > 0.0)) throw file_error(file.path(), arch + ".rope.scaling.factor must be positive");
    meta.set("llama.rope_scaling.type", type);
    meta.set("llama.rope_scaling.factor", factor);
    if (file.find(arch + ".rope.scaling.original_context_length"))
        meta.set("llama.rope_scaling.original_context_length", file.get_u64(arch + ".rope.scaling.original_context_length"));
}

llama_config read_config(const gguf_file& file, const std::string& arch) {
    const std::string p = arch + ".";
    llama_config c;
    c.dim = file.get_u64(p + "embedding_length");
    c.hidden_dim = file.get_u64(p + "feed_forward_length");
    c.n_layers = file.get_u64(p + "block_count");
    c.n_heads = file.get_u64(p + "attention.head_count");
    c.n_kv_heads = file.get_u64_or(p + "attention.head_count_kv", c.n_heads);
    if (c.n_heads == 0) throw file_error(file.path(), p + "attention.head_count is 0");
    c.head_dim = file.get_u64_or(p + "attention.key_length", c.dim / c.n_heads);
    if (file.get_u64_or(p + "attention.value_length", c.head_dim) != c.head_dim)
        throw file_error(file.path(), "key and value head widths differ; kiln needs them equal");
    if (file.get_u64_or(p + "rope.dimension_count", c.head_dim) != c.head_dim)
        throw file_error(file.path(), p + "rope.dimension_count differs from the head width (partial RoPE is not supported)");
    c.context_length = file.get_u64_or(p + "context_length", 2048);
    c.norm_eps = file.get_f64_or(p + "attention.layer_norm_rms_epsilon", 1e-5);
    c.rope_theta = file.get_f64_or(p + "rope.freq_base", 10000.0);
    // GGUF "llama" Q/K rows are already permuted for adjacent-pair RoPE (the GGUF converter undid
    // HF's rotate-half order); "qwen2" keeps HF's order and is run with NEOX-style RoPE.
    c.rope = arch == "qwen2" ? rope_style::neox : rope_style::interleaved;
    return c;
}

}  // namespace

model_source load_gguf(const std::filesystem::path& path) {
    const gguf_file file = gguf_file::open(path);
    const std::string arch = file.get_string("general.architecture");
    if (arch == "deepseek2") return load_gguf_deepseek2(file);
    if (arch != "llama" && arch != "qwen2")
        throw file_error(path, "unsupported architecture '" + arch + "' (kiln imports llama, qwen2 and deepseek2 from GGUF)");
    if (!file.find("tokenizer.ggml.model")) throw file_error(path, "no tokenizer (tokenizer.ggml.model is missing)");

    llama_config config = read_config(file, arch);
    const gguf_tensor_info* embedding = file.find_tensor("token_embd.weight");
    if (!embedding || embedding->dims.size() != 2) throw file_error(path, "token_embd.weight is missing or not a matrix");
    config.vocab_size = embedding->dims[1];  // rows; GGUF dims are innermost first
    try {
        config.validate();
    } catch (const file_error&) {
        throw;
    } catch (const error& e) {
        throw file_error(path, e.what());
    }

    vocabulary vocab = vocabulary_from_gguf(file);
    if (vocab.size() > config.vocab_size)
        throw file_error(path, "the tokenizer has " + std::to_string(vocab.size()) + " tokens but token_embd only " +
                                   std::to_string(config.vocab_size) + " rows");
    vocab.pad_to(config.vocab_size);  // embedding rows past the last token: ids nothing encodes to

    model_source source;
    config.to_metadata(source.meta);
    vocab.to_metadata(source.meta);
    source.meta.set("general.source", "gguf (" + arch + ")");
    if (file.find("general.name")) source.meta.set("general.name", file.get_string("general.name"));
    import_rope_scaling(file, arch, source.meta);

    for (const auto& info : file.tensors()) {
        auto name = kiln_tensor_name(info.name);
        if (!name) throw file_error(path, "unexpected tensor '" + info.name + "' for a " + arch + " model");
        const auto type = ggml_type_lookup(info.type);
        if (!type || !type->decodable)
            throw file_error(path, "tensor '" + info.name + "' has type " + std::string(info.type_name()) +
                                       ", which kiln cannot decode");
        source_tensor t;
        t.name = *name;
        t.shape = info.shape();
        t.source_type = std::string(type->name);
        t.read_f32 = [file, info](std::span<float> out) { file.read_f32(info, out); };
        source.tensors.push_back(std::move(t));
    }
    detail::check_llama_tensors(path, config, source.tensors);
    return source;
}

}  // namespace kiln
