// Reads llama2.c's tokenizer.bin into a SentencePiece-style vocabulary.
#pragma once
#include <cstdint>
#include <filesystem>

#include "kiln/formats/vocabulary.hpp"

namespace kiln {

// Layout: u32 max_token_length, then vocab_size records {f32 score, i32 len, len bytes}.
// Pieces are stored the SentencePiece way (a space becomes U+2581, "\n<s>\n" becomes "<s>", ...).
// vocab_size is the model's: a file with fewer or more tokens is rejected, since ids would not
// line up with the embedding rows. Throws kiln::file_error naming the file.
vocabulary load_llama2c_tokenizer(const std::filesystem::path& path, uint64_t vocab_size);
// Every record up to the end of the file, for looking at a tokenizer without its model.
vocabulary load_llama2c_tokenizer(const std::filesystem::path& path);

}  // namespace kiln
