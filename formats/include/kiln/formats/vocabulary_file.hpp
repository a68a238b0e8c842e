// A vocabulary from any file that holds one, recognised by content: a .kiln model, a GGUF file, a
// Hugging Face tokenizer.json or tokenizer.model, llama2.c's tokenizer.bin, or an HF model folder.
// Only the tokenizer is read, never the weights.
#pragma once
#include <filesystem>
#include <string>

#include "kiln/formats/vocabulary.hpp"

namespace kiln {

struct vocabulary_file {
    vocabulary vocab;
    std::string kind;  // "kiln", "gguf", "tokenizer.json", "sentencepiece", "llama2.c", "hf folder"
};

// Throws kiln::file_error naming the file and what it is not.
vocabulary_file load_vocabulary_file(const std::filesystem::path& path);

}  // namespace kiln
