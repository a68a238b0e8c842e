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

}  // namespace kiln
