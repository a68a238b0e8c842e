// Text <-> token ids for the vocabularies kiln knows: SentencePiece BPE ("llama-spm") and byte-level BPE ("byte-bpe").
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kiln/formats/vocabulary.hpp"

namespace kiln {

class pretokenizer;

class tokenizer {
public:
    // Copies what it needs from vocab and builds the lookup tables; throws kiln::error when the
    // vocabulary is invalid or names an unknown model or pre-tokenizer.
    explicit tokenizer(const vocabulary& vocab);

    // Token ids for text, with BOS first when add_bos and the vocabulary has one. With
    // parse_special, control and added tokens written in the text ("<s>", "<|im_end|>", as chat
    // templates write them) become their ids, and SentencePiece gives the text after each one its
    // own dummy-prefix space (llama.cpp's rule). Byte-level BPE always matches them, as Hugging
    // Face tokenizers do; SentencePiece only when asked, since llama2.c and SentencePiece read
    // "<s>" in a prompt as three characters.
    std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special = false) const;
    // The text of ids: control tokens (BOS, EOS, ...) print nothing, byte tokens give their raw
    // byte, and the SentencePiece dummy-prefix space is removed, so decode(encode(s)) == s.
    std::string decode(std::span<const int32_t> ids) const;
    // The bytes to print for id while streaming, given the token before it. llama2.c's rule: the
    // piece right after BOS loses its leading (dummy-prefix) space. May be a partial UTF-8 sequence.
    std::string piece_text(int32_t prev_id, int32_t id) const;

    // The bytes id stands for in text, as decode joins them (empty for control tokens; may be a
    // partial UTF-8 sequence). Throws kiln::error for ids outside the vocabulary.
    const std::string& token_bytes(int32_t id) const { return checked_bytes(id); }

    int32_t bos_id() const { return bos_id_; }
    int32_t eos_id() const { return eos_id_; }
    size_t size() const { return token_bytes_.size(); }
    bool is_control(int32_t id) const;

private:
    // One merge rule of byte-level BPE: the pair's rank (lower merges first) and the token it makes.
    struct bpe_merge {
        int32_t rank;
        int32_t merged_id;
    };

    void encode_spm(std::string_view text, std::vector<int32_t>& ids, bool space_prefix) const;
    // The text cut at special tokens: (fragment, -1) for plain text, ("", id) for each special token.
    std::vector<std::pair<std::string_view, int32_t>> split_special(std::string_view text) const;
    void collect_special_token(const std::string& piece, int32_t id);
    void index_special_tokens();
    void encode_bpe(std::string_view text, std::vector<int32_t>& ids) const;
    void encode_bpe_word(std::string_view word, std::vector<int32_t>& ids) const;
    void build_bpe_tables(const vocabulary& vocab);
    const std::string& checked_bytes(int32_t id) const;

    bool byte_level_ = false;  // model "byte-bpe"
    bool add_space_prefix_ = false;
    bool ignore_merges_ = false;  // byte-bpe: a word that is itself a token skips the merges (Llama 3)
    int32_t bos_id_ = -1;
    int32_t eos_id_ = -1;
    int32_t unk_id_ = -1;
    std::vector<std::string> pieces_;      // the vocabulary's piece of each id
    std::vector<float> scores_;            // llama-spm merge priority of each id
    std::vector<int32_t> types_;           // token_kind of each id
    std::vector<std::string> token_bytes_; // what each id decodes to (empty for control tokens)
    // Pieces that encoding may produce from text (not control, unknown or byte tokens) -> id.
    std::unordered_map<std::string, int32_t> piece_ids_;
    std::array<int32_t, 256> byte_fallback_ids_{};  // llama-spm <0xNN> token of each byte, -1 if none
    // byte-bpe: (left id << 32 | right id) -> merge; the single-symbol token of each byte.
    std::unordered_map<uint64_t, bpe_merge> bpe_merges_;
    std::array<int32_t, 256> byte_symbol_ids_{};
    // Added/special tokens matched in the raw text (byte-bpe: always, before pre-tokenization;
    // llama-spm: with parse_special), longest first.
    std::vector<std::pair<std::string, int32_t>> special_tokens_;
    std::array<bool, 256> special_token_starts_{};  // first bytes of special_tokens_, to skip most positions fast
    std::shared_ptr<const pretokenizer> pretokenizer_;
};

}  // namespace kiln
