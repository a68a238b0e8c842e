// Importing a Hugging Face model folder (config.json + safetensors + tokenizer.model or
// tokenizer.json) for the Llama, Mistral and Qwen2 causal-LM architectures.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "kiln/formats/model_config.hpp"
#include "kiln/formats/model_source.hpp"
#include "kiln/formats/vocabulary.hpp"

namespace kiln {

// rope_scaling of config.json, for the types kiln's runtime can apply ("linear", "llama3").
struct hf_rope_scaling {
    std::string type;
    double factor = 1.0;
    std::optional<double> low_freq_factor;           // llama3
    std::optional<double> high_freq_factor;          // llama3
    std::optional<uint64_t> original_context_length; // llama3: original_max_position_embeddings
};

struct hf_model_config {
    std::string architecture;  // "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"
    llama_config llama;        // vocab_size from config.json; rope = neox (see load_hf_folder)
    bool tie_word_embeddings = false;
    bool qkv_bias = false;     // Qwen2, or Llama with attention_bias
    std::optional<hf_rope_scaling> rope_scaling;
    std::optional<uint64_t> sliding_window;  // Mistral; stored for the runtime, not applied yet
    std::optional<int64_t> bos_id, eos_id;
};

// Throws kiln::file_error naming config.json and the field.
hf_model_config parse_hf_config(const std::filesystem::path& config_json);

// Stores the rope_scaling keys as llama.rope_scaling.{type,factor,low_freq_factor,
// high_freq_factor,original_context_length}.
void rope_scaling_to_metadata(const hf_rope_scaling& scaling, metadata& meta);

// A SentencePiece model protobuf (tokenizer.model) as a "llama-spm" vocabulary: pieces, scores
// and types, unk/bos/eos from the trainer spec, add_space_prefix from the normalizer spec.
vocabulary load_sentencepiece_model(const std::filesystem::path& tokenizer_model);

// The whole folder as a model_source. HF checkpoints store Q and K rows in rotate-half order;
// kiln keeps those rows as they are and marks the model rope_style = neox, which is exactly the
// rotation that order expects (no row permutation, so no chance of permuting wrongly).
model_source load_hf_folder(const std::filesystem::path& dir);

}  // namespace kiln
