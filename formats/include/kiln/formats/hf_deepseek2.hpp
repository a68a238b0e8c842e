// Importing a Hugging Face DeepseekV2ForCausalLM folder (DeepSeek-V2, DeepSeek-V2-Lite): the
// config.json fields as DeepSeek publishes them, kv_b_proj split and transposed per head into the
// absorbed attn_k_b / attn_v_b, experts stacked into 3-D tensors (formats/SPEC_deepseek2.md).
#pragma once
#include <filesystem>
#include <functional>

#include "kiln/formats/deepseek2_config.hpp"
#include "kiln/formats/model_source.hpp"
#include "kiln/formats/vocabulary.hpp"

namespace kiln {

// True when config.json names DeepseekV2ForCausalLM (false when it is missing or unreadable:
// the llama importer then reports the problem).
bool hf_folder_is_deepseek2(const std::filesystem::path& dir);

// Throws kiln::file_error naming config.json and the field; refuses what kiln does not run
// (grouped top-k routing, sigmoid scoring, MoE only every few layers, non-YaRN rope scaling).
deepseek2_config parse_hf_deepseek2_config(const std::filesystem::path& config_json);

// The folder as a model_source; vocabulary(vocab_size) loads the folder's tokenizer padded to
// the embedding's rows (hf_import.cpp's loader).
model_source load_hf_deepseek2_folder(const std::filesystem::path& dir,
                                      const std::function<vocabulary(uint64_t)>& vocabulary_of);

}  // namespace kiln
