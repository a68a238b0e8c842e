// Importing a Hugging Face model folder as a model_source: config.json for the hyper-parameters,
// safetensors for the weights (renamed to kiln's names), tokenizer.model or tokenizer.json for the
// vocabulary, tokenizer_config.json for the chat template.
#include <filesystem>
#include <string>

#include "hf_gguf_shapes.hpp"
#include "kiln/formats/chat_template.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/hf_config.hpp"
#include "kiln/formats/hf_deepseek2.hpp"
#include "kiln/formats/hf_tokenizer.hpp"
#include "kiln/formats/safetensors.hpp"

namespace kiln {
namespace {

// HF tensor name -> kiln name, or "" for tensors kiln ignores on purpose (the rotary inverse
// frequencies some checkpoints save, which the runtime recomputes). nullopt for unknown names.
std::optional<std::string> kiln_tensor_name(const std::string& hf) {
    if (hf == "model.embed_tokens.weight") return "token_embd";
    if (hf == "model.norm.weight") return "output_norm";
    if (hf == "lm_head.weight") return "output";
    const std::string prefix = "model.layers.";
    if (hf.rfind(prefix, 0) != 0) return std::nullopt;
    const size_t dot = hf.find('.', prefix.size());
    if (dot == std::string::npos || dot == prefix.size()) return std::nullopt;
    const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
    if (layer.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    const std::string rest = hf.substr(dot + 1);
    const std::string block = "blk." + layer + ".";
    static const std::pair<const char*, const char*> table[] = {
        {"input_layernorm.weight", "attn_norm"},
        {"self_attn.q_proj.weight", "attn_q"},
        {"self_attn.k_proj.weight", "attn_k"},
        {"self_attn.v_proj.weight", "attn_v"},
        {"self_attn.o_proj.weight", "attn_output"},
        {"self_attn.q_proj.bias", "attn_q_bias"},
        {"self_attn.k_proj.bias", "attn_k_bias"},
        {"self_attn.v_proj.bias", "attn_v_bias"},
        {"post_attention_layernorm.weight", "ffn_norm"},
        {"mlp.gate_proj.weight", "ffn_gate"},
        {"mlp.up_proj.weight", "ffn_up"},
        {"mlp.down_proj.weight", "ffn_down"},
    };
    for (const auto& [from, to] : table)
        if (rest == from) return block + to;
    if (rest == "self_attn.rotary_emb.inv_freq") return std::string();
    return std::nullopt;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return s;
}

// The folder's tokenizer: tokenizer.model (SentencePiece) when there is one, as the slow HF
// tokenizer would load it, else tokenizer.json (Llama 3, Qwen2 and other byte-level BPE models
// ship only that). Padded with placeholders up to the embedding's rows; the chat template of
// tokenizer_config.json is recognised here too.
vocabulary load_folder_vocabulary(const std::filesystem::path& dir, uint64_t vocab_size) {
    std::filesystem::path tokenizer_path = dir / "tokenizer.model";
    vocabulary vocab;
    if (std::filesystem::exists(tokenizer_path)) {
        vocab = load_sentencepiece_model(tokenizer_path);
    } else {
        tokenizer_path = dir / "tokenizer.json";
        if (!std::filesystem::exists(tokenizer_path)) throw file_error(dir, "no tokenizer.model or tokenizer.json");
        vocab = load_hf_tokenizer(tokenizer_path);
    }
    if (vocab.size() > vocab_size)
        throw file_error(tokenizer_path, "has " + std::to_string(vocab.size()) + " tokens but config.json vocab_size is " +
                                             std::to_string(vocab_size));
    vocab.pad_to(vocab_size);
    if (const auto config = dir / "tokenizer_config.json"; std::filesystem::exists(config)) {
        const std::string jinja = read_hf_chat_template(config);
        if (auto chat = detect_chat_template(jinja)) vocab.chat_template = std::string(chat->name());
    }
    return vocab;
}

}  // namespace

model_source load_hf_folder(const std::filesystem::path& dir) {
    if (!std::filesystem::is_directory(dir)) throw file_error(dir, "not a folder");
    if (hf_folder_is_deepseek2(dir))
        return load_hf_deepseek2_folder(dir, [&](uint64_t vocab_size) { return load_folder_vocabulary(dir, vocab_size); });
    const hf_model_config config = parse_hf_config(dir / "config.json");
    const safetensors_set weights = safetensors_set::open_folder(dir);

    const vocabulary vocab = load_folder_vocabulary(dir, config.llama.vocab_size);

    model_source source;
    config.llama.to_metadata(source.meta);
    vocab.to_metadata(source.meta);
    source.meta.set("general.source", "huggingface (" + config.architecture + ")");
    if (config.rope_scaling) rope_scaling_to_metadata(*config.rope_scaling, source.meta);
    if (config.sliding_window) source.meta.set("llama.sliding_window", *config.sliding_window);

    for (const std::string& hf_name : weights.names()) {
        const auto name = kiln_tensor_name(hf_name);
        if (!name) throw file_error(dir, "unexpected tensor '" + hf_name + "' for " + config.architecture);
        if (name->empty()) continue;
        // A tied checkpoint may still save lm_head (a copy of the embedding); the runtime reuses
        // token_embd, so the copy is dropped.
        if (*name == "output" && config.tie_word_embeddings) continue;
        const bool bias = name->size() > 5 && name->compare(name->size() - 5, 5, "_bias") == 0;
        if (bias && !config.qkv_bias) throw file_error(dir, "unexpected bias tensor '" + hf_name + "'");
        auto file = weights.file_of(hf_name);
        const safetensors_tensor& info = *file->find(hf_name);
        if (info.dtype != "F32" && info.dtype != "F16" && info.dtype != "BF16")
            throw file_error(file->path(), "tensor '" + hf_name + "' has dtype " + info.dtype + "; kiln imports F32, F16 and BF16");
        source_tensor t;
        t.name = *name;
        t.shape = info.shape;
        t.source_type = lower(info.dtype);
        t.read_f32 = [file, info](std::span<float> out) { file->read_f32(info, out); };
        source.tensors.push_back(std::move(t));
    }
    if (!config.tie_word_embeddings && !weights.file_of("lm_head.weight"))
        throw file_error(dir, "lm_head.weight is missing and tie_word_embeddings is false");
    detail::check_llama_tensors(dir, config.llama, source.tensors);
    return source;
}

}  // namespace kiln
