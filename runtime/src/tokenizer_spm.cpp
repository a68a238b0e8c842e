// SentencePiece BPE encoding (model "llama-spm"): characters, byte fallback, then merges by piece score.
#include <optional>

#include "kiln/runtime/tokenizer.hpp"
#include "symbol_merge.hpp"

namespace kiln {

namespace {

const std::string sentencepiece_space = "\xE2\x96\x81";

bool is_utf8_continuation(char byte) { return (static_cast<unsigned char>(byte) & 0xC0) == 0x80; }

}  // namespace

void tokenizer::encode_spm(std::string_view text, std::vector<int32_t>& ids, bool space_prefix) const {
    std::vector<int32_t> symbols;
    symbols.reserve(text.size() + 1);
    std::string character;
    auto push_character = [&](std::string_view bytes) {
        character.assign(bytes);
        if (character == " ") character = sentencepiece_space;
        if (auto found = piece_ids_.find(character); found != piece_ids_.end()) {
            symbols.push_back(found->second);
            return;
        }
        for (char byte : bytes) {
            const int32_t byte_id = byte_fallback_ids_[static_cast<unsigned char>(byte)];
            if (byte_id >= 0)
                symbols.push_back(byte_id);
            else if (unk_id_ >= 0)
                symbols.push_back(unk_id_);
        }
    };
    // SentencePiece's dummy prefix: the first word then looks like every other word ("▁Hello").
    if (space_prefix) push_character(" ");
    // Characters are split as llama2.c's run.c splits them: a byte plus the continuation bytes after
    // it, at most 4 bytes, so even invalid UTF-8 is cut the same way.
    for (size_t start = 0; start < text.size();) {
        size_t length = 1;
        while (length < 4 && start + length < text.size() && is_utf8_continuation(text[start + length])) ++length;
        push_character(text.substr(start, length));
        start += length;
    }

    std::string joined;
    detail::merge_symbols(symbols, [&](int32_t left, int32_t right) -> std::optional<detail::merge_candidate> {
        joined.assign(pieces_[left]);
        joined += pieces_[right];
        auto found = piece_ids_.find(joined);
        if (found == piece_ids_.end()) return std::nullopt;
        return detail::merge_candidate{scores_[found->second], found->second};
    });
    ids.insert(ids.end(), symbols.begin(), symbols.end());
}

}  // namespace kiln
