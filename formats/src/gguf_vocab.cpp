// The tokenizer embedded in a GGUF file's tokenizer.ggml.* keys, as a kiln::vocabulary.
#include <string>

#include "kiln/formats/chat_template.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"

namespace kiln {
namespace {

// A special-token id: absent keys keep the default; GGUF writers mark "none" with u32 0xFFFFFFFF
// (or -1), which kiln stores as -1.
int64_t special_id(const gguf_file& file, const std::string& key, int64_t fallback, size_t n_tokens) {
    const gguf_value* v = file.find(key);
    if (!v) return fallback;
    if (!v->is_integer()) throw file_error(file.path(), "metadata '" + key + "' is not an integer");
    const bool none = v->type() == gguf_type::u32 ? std::get<uint32_t>(v->value) == 0xFFFFFFFFu : v->as_i64() == -1;
    if (none) return -1;
    const int64_t id = v->as_i64();
    if (id < 0 || static_cast<uint64_t>(id) >= n_tokens)
        throw file_error(file.path(), "metadata '" + key + "' = " + std::to_string(id) + " is not a token id (vocabulary of " +
                                          std::to_string(n_tokens) + ")");
    return id;
}

void check_length(const gguf_file& file, const std::string& key, size_t length, size_t n_tokens) {
    if (length != n_tokens)
        throw file_error(file.path(), "metadata '" + key + "' has " + std::to_string(length) + " entries for " +
                                          std::to_string(n_tokens) + " tokens");
}

}  // namespace

vocabulary vocabulary_from_gguf(const gguf_file& file) {
    const std::string model = file.get_string("tokenizer.ggml.model");
    vocabulary vocab;
    vocab.tokens = file.get_string_array("tokenizer.ggml.tokens");
    const size_t n = vocab.tokens.size();
    if (n == 0) throw file_error(file.path(), "tokenizer.ggml.tokens is empty");

    if (file.find("tokenizer.ggml.token_type")) {
        vocab.types = file.get_i32_array("tokenizer.ggml.token_type");
        check_length(file, "tokenizer.ggml.token_type", vocab.types.size(), n);
    } else {
        vocab.types.assign(n, static_cast<int32_t>(token_kind::normal));
    }
    if (file.find("tokenizer.ggml.scores")) {
        vocab.scores = file.get_f32_array("tokenizer.ggml.scores");
        check_length(file, "tokenizer.ggml.scores", vocab.scores.size(), n);
    } else {
        // Byte-level BPE ranks merges, not tokens; keep the arrays parallel all the same.
        vocab.scores.assign(n, 0.0f);
    }

    if (model == "llama") {
        vocab.model = "llama-spm";
        vocab.bos_id = special_id(file, "tokenizer.ggml.bos_token_id", 1, n);
        vocab.eos_id = special_id(file, "tokenizer.ggml.eos_token_id", 2, n);
        vocab.unk_id = special_id(file, "tokenizer.ggml.unknown_token_id", 0, n);
        vocab.add_bos = file.get_bool_or("tokenizer.ggml.add_bos_token", true);
        vocab.add_space_prefix = file.get_bool_or("tokenizer.ggml.add_space_prefix", true);
    } else if (model == "gpt2") {
        vocab.model = "byte-bpe";
        vocab.pre = file.get_string_or("tokenizer.ggml.pre", "default");
        vocab.merges = file.get_string_array("tokenizer.ggml.merges");
        vocab.bos_id = special_id(file, "tokenizer.ggml.bos_token_id", -1, n);
        vocab.eos_id = special_id(file, "tokenizer.ggml.eos_token_id", -1, n);
        vocab.unk_id = special_id(file, "tokenizer.ggml.unknown_token_id", -1, n);
        // GPT-2 style vocabularies add no BOS unless the file says so (DeepSeek's do).
        vocab.add_bos = file.get_bool_or("tokenizer.ggml.add_bos_token", false);
        vocab.add_space_prefix = file.get_bool_or("tokenizer.ggml.add_space_prefix", false);
    } else {
        throw file_error(file.path(), "unsupported tokenizer model '" + model + "' (kiln reads 'llama' and 'gpt2')");
    }
    // GGUF keeps the model's Jinja template; kiln keeps the name of the built-in it matches.
    if (const gguf_value* jinja = file.find("tokenizer.chat_template"); jinja && jinja->type() == gguf_type::string)
        if (auto chat = detect_chat_template(jinja->as_string())) vocab.chat_template = std::string(chat->name());
    try {
        vocab.validate();
    } catch (const error& e) {
        throw file_error(file.path(), e.what());
    }
    return vocab;
}

}  // namespace kiln
