// Opening any model a user already has (llama2.c checkpoint, GGUF file, Hugging Face folder) as
// a model_source, recognised by content rather than by file name.
#pragma once
#include <filesystem>
#include <optional>

#include "kiln/formats/model_source.hpp"

namespace kiln {

struct import_options {
    // A separate tokenizer file, needed by llama2.c checkpoints (tokenizer.bin).
    std::optional<std::filesystem::path> tokenizer;
};

// Throws kiln::file_error naming the file and the problem.
model_source open_model_source(const std::filesystem::path& input, const import_options& options);

// llama2.c legacy (version 0) checkpoint: 7 int32 header, f32 tensors.
model_source load_llama2c(const std::filesystem::path& checkpoint, const std::filesystem::path& tokenizer);

}  // namespace kiln

namespace kiln {

// A .kiln file as a model_source (every tensor dequantized to f32 on demand), for `kiln quantize`.
model_source load_kiln_source(const std::filesystem::path& path);

}  // namespace kiln
