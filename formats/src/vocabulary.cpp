// The tokenizer part of a .kiln file: checks a vocabulary and maps it to and from the tokenizer.* keys.
#include "kiln/formats/vocabulary.hpp"

#include <string>

#include "kiln/formats/error.hpp"

namespace kiln {

namespace {

void check_special_id(const char* name, int64_t id, size_t token_count) {
    // -1 is the documented "no such token"; anything else must name a real token.
    if (id < -1 || (id >= 0 && static_cast<uint64_t>(id) >= token_count))
        throw error(std::string("tokenizer: ") + name + " " + std::to_string(id) + " is outside the vocabulary of " +
                    std::to_string(token_count) + " tokens");
}

}  // namespace

void vocabulary::validate() const {
    if (model != "llama-spm" && model != "byte-bpe")
        throw error("tokenizer: unknown tokenizer model \"" + model + "\"");
    if (tokens.empty()) throw error("tokenizer: the vocabulary has no tokens");
    if (scores.size() != tokens.size())
        throw error("tokenizer: " + std::to_string(scores.size()) + " scores for " + std::to_string(tokens.size()) +
                    " tokens");
    if (types.size() != tokens.size())
        throw error("tokenizer: " + std::to_string(types.size()) + " token types for " +
                    std::to_string(tokens.size()) + " tokens");
    for (size_t id = 0; id < types.size(); ++id) {
        if (types[id] < static_cast<int32_t>(token_kind::normal) || types[id] > static_cast<int32_t>(token_kind::byte))
            throw error("tokenizer: token " + std::to_string(id) + " has unknown type " + std::to_string(types[id]));
    }
    check_special_id("bos_id", bos_id, tokens.size());
    check_special_id("eos_id", eos_id, tokens.size());
    check_special_id("unk_id", unk_id, tokens.size());
    if (model == "byte-bpe" && merges.empty()) throw error("tokenizer: a byte-bpe vocabulary needs merges");
}

void vocabulary::pad_to(size_t n) {
    for (size_t id = tokens.size(); id < n; ++id) {
        tokens.push_back("[PAD" + std::to_string(id) + "]");
        scores.push_back(0.0f);
        types.push_back(static_cast<int32_t>(token_kind::unused));
    }
}

void vocabulary::to_metadata(metadata& meta) const {
    validate();
    meta.set("tokenizer.model", model);
    meta.set("tokenizer.tokens", tokens);
    meta.set("tokenizer.scores", scores);
    meta.set("tokenizer.token_types", types);
    meta.set("tokenizer.bos_id", bos_id);
    meta.set("tokenizer.eos_id", eos_id);
    meta.set("tokenizer.unk_id", unk_id);
    meta.set("tokenizer.add_bos", add_bos);
    meta.set("tokenizer.add_space_prefix", add_space_prefix);
    // Optional keys: written only when they carry something, so llama-spm files stay as SPEC.md v1 shows.
    if (!merges.empty()) meta.set("tokenizer.merges", merges);
    if (!pre.empty()) meta.set("tokenizer.pre", pre);
    if (!chat_template.empty()) meta.set("tokenizer.chat_template", chat_template);
}

vocabulary vocabulary::from_metadata(const metadata& meta) {
    vocabulary vocab;
    vocab.model = meta.get_string("tokenizer.model");
    vocab.tokens = meta.get_string_array("tokenizer.tokens");
    vocab.scores = meta.get_f32_array("tokenizer.scores");
    vocab.types = meta.get_i32_array("tokenizer.token_types");
    vocab.bos_id = meta.get_i64_or("tokenizer.bos_id", -1);
    vocab.eos_id = meta.get_i64_or("tokenizer.eos_id", -1);
    vocab.unk_id = meta.get_i64_or("tokenizer.unk_id", -1);
    vocab.add_bos = meta.get_bool_or("tokenizer.add_bos", vocab.bos_id >= 0);
    vocab.add_space_prefix = meta.get_bool_or("tokenizer.add_space_prefix", vocab.model == "llama-spm");
    if (meta.has("tokenizer.merges")) vocab.merges = meta.get_string_array("tokenizer.merges");
    vocab.pre = meta.get_string_or("tokenizer.pre", "");
    vocab.chat_template = meta.get_string_or("tokenizer.chat_template", "");
    vocab.validate();
    return vocab;
}

}  // namespace kiln
