// Reads a Hugging Face tokenizer.json (BPE models: byte-level or SentencePiece-style) into a vocabulary.
#pragma once
#include <filesystem>

#include "kiln/formats/vocabulary.hpp"

namespace kiln {

// Byte-level BPE files (GPT-2, Llama 3, Qwen2, DeepSeek) become model "byte-bpe" with their merges
// and the pre-tokenizer's name in `pre`; SentencePiece-style files (byte_fallback, "▁" for a space,
// e.g. Llama 2) become "llama-spm" with scores derived from the merge ranks. BOS/EOS and add_bos
// come from tokenizer_config.json beside the file when there is one. Throws kiln::file_error.
vocabulary load_hf_tokenizer(const std::filesystem::path& tokenizer_json);

// The Jinja chat_template of a tokenizer_config.json, or "" when it has none. A list of named
// templates (as some models ship) gives the one named "default", else the first.
// Throws kiln::file_error when the file is not JSON or the entry is malformed.
std::string read_hf_chat_template(const std::filesystem::path& tokenizer_config_json);

}  // namespace kiln
