// The tokenizer data stored in a .kiln file (metadata keys tokenizer.*); the algorithms live in
// runtime/tokenizer.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/formats/metadata.hpp"

namespace kiln {

// Token kinds, numbered as GGUF numbers them.
enum class token_kind : int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

struct vocabulary {
    std::string model = "llama-spm";  // tokenizer algorithm: "llama-spm" or "byte-bpe", see SPEC.md
    std::string pre;                  // byte-bpe pre-tokenizer name ("gpt-2", "llama3", "qwen2", ...)
    std::vector<std::string> tokens;  // SentencePiece pieces keep U+2581 for a space
    std::vector<float> scores;
    std::vector<int32_t> types;       // token_kind values
    std::vector<std::string> merges;  // byte-bpe merge rules "a b", highest priority first
    int64_t bos_id = 1;
    int64_t eos_id = 2;
    int64_t unk_id = 0;
    bool add_bos = true;
    bool add_space_prefix = true;
    // Name of the built-in chat template (chat_template.hpp) the model was trained with; empty
    // when unknown. Not checked here: a name a later kiln adds must not make the file unreadable.
    std::string chat_template;

    size_t size() const { return tokens.size(); }
    // Appends unused placeholder tokens "[PAD<id>]" up to n tokens: embedding tables are often
    // padded past the tokenizer's last id (to a multiple of 64, say), and ids must cover every row.
    void pad_to(size_t n);
    // Throws kiln::error when arrays disagree in length or special ids are out of range.
    void validate() const;
    void to_metadata(metadata& meta) const;
    static vocabulary from_metadata(const metadata& meta);
};

}  // namespace kiln
