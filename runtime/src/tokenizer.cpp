// The tokenizer's shared part: lookup tables, decoding, streaming pieces, and dispatch by model.
#include "kiln/runtime/tokenizer.hpp"

#include <algorithm>

#include "kiln/formats/error.hpp"

namespace kiln {

namespace {

const std::string sentencepiece_space = "\xE2\x96\x81";  // U+2581 stands for ' ' in SentencePiece pieces

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// The byte a "<0xNN>" piece stands for, or -1.
int byte_piece_value(const std::string& piece) {
    if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
    const int high = hex_digit(piece[3]), low = hex_digit(piece[4]);
    return high < 0 || low < 0 ? -1 : high * 16 + low;
}

std::string sentencepiece_to_text(const std::string& piece) {
    std::string text;
    text.reserve(piece.size());
    for (size_t i = 0; i < piece.size();) {
        if (piece.compare(i, sentencepiece_space.size(), sentencepiece_space) == 0) {
            text += ' ';
            i += sentencepiece_space.size();
        } else {
            text += piece[i++];
        }
    }
    return text;
}

}  // namespace

tokenizer::tokenizer(const vocabulary& vocab) {
    vocab.validate();
    byte_level_ = vocab.model == "byte-bpe";
    add_space_prefix_ = vocab.add_space_prefix && !byte_level_;
    bos_id_ = static_cast<int32_t>(vocab.bos_id);
    eos_id_ = static_cast<int32_t>(vocab.eos_id);
    unk_id_ = static_cast<int32_t>(vocab.unk_id);
    pieces_ = vocab.tokens;
    scores_ = vocab.scores;
    types_ = vocab.types;
    byte_fallback_ids_.fill(-1);

    if (byte_level_) {
        build_bpe_tables(vocab);
        return;
    }
    token_bytes_.resize(pieces_.size());
    piece_ids_.reserve(pieces_.size());
    for (size_t index = 0; index < pieces_.size(); ++index) {
        const int32_t id = static_cast<int32_t>(index);
        const std::string& piece = pieces_[index];
        switch (static_cast<token_kind>(types_[index])) {
        case token_kind::control:
            collect_special_token(piece, id);  // print nothing; come out of text only with parse_special
            break;
        case token_kind::unused:
            break;  // placeholders (padded vocabularies): print nothing, never come out of text
        case token_kind::byte:
            if (int value = byte_piece_value(piece); value >= 0) {
                token_bytes_[index] = std::string(1, static_cast<char>(value));
                if (byte_fallback_ids_[value] < 0) byte_fallback_ids_[value] = id;
            } else {
                token_bytes_[index] = piece;
            }
            break;
        case token_kind::unknown:
            token_bytes_[index] = piece;
            break;
        case token_kind::user_defined:
            collect_special_token(piece, id);
            [[fallthrough]];
        default:
            token_bytes_[index] = sentencepiece_to_text(piece);
            // The first id wins when a piece repeats, as a sorted-vocabulary lookup would find it.
            piece_ids_.emplace(piece, id);
            break;
        }
    }
    index_special_tokens();
}

void tokenizer::collect_special_token(const std::string& piece, int32_t id) {
    if (!piece.empty()) special_tokens_.emplace_back(piece, id);
}

void tokenizer::index_special_tokens() {
    // Longest first, so that at one position the longest special token wins.
    std::stable_sort(special_tokens_.begin(), special_tokens_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    special_token_starts_.fill(false);
    for (const auto& [content, id] : special_tokens_) special_token_starts_[static_cast<unsigned char>(content[0])] = true;
}

std::vector<std::pair<std::string_view, int32_t>> tokenizer::split_special(std::string_view text) const {
    std::vector<std::pair<std::string_view, int32_t>> parts;
    size_t fragment_start = 0;
    for (size_t position = 0; position < text.size();) {
        bool matched = false;
        if (special_token_starts_[static_cast<unsigned char>(text[position])]) {
            const std::string_view rest = text.substr(position);
            for (const auto& [content, id] : special_tokens_) {
                if (!rest.starts_with(content)) continue;
                if (position > fragment_start) parts.emplace_back(text.substr(fragment_start, position - fragment_start), -1);
                parts.emplace_back(std::string_view(), id);
                position += content.size();
                fragment_start = position;
                matched = true;
                break;
            }
        }
        if (!matched) ++position;
    }
    if (fragment_start < text.size()) parts.emplace_back(text.substr(fragment_start), -1);
    return parts;
}

bool tokenizer::is_control(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < types_.size() &&
           types_[id] == static_cast<int32_t>(token_kind::control);
}

const std::string& tokenizer::checked_bytes(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= token_bytes_.size())
        throw error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                    std::to_string(token_bytes_.size()) + " tokens");
    return token_bytes_[id];
}

std::vector<int32_t> tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 2);
    if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
    if (text.empty()) return ids;
    if (byte_level_) {
        encode_bpe(text, ids);
    } else if (!parse_special) {
        encode_spm(text, ids, add_space_prefix_);
    } else {
        bool after_special = true;  // the first fragment gets the dummy prefix, as the whole text would
        for (const auto& [fragment, id] : split_special(text)) {
            if (id >= 0) {
                ids.push_back(id);
                after_special = true;
            } else {
                encode_spm(fragment, ids, add_space_prefix_ && after_special);
                after_special = false;
            }
        }
    }
    return ids;
}

std::string tokenizer::decode(std::span<const int32_t> ids) const {
    std::string text;
    for (int32_t id : ids) text += checked_bytes(id);
    // SentencePiece added one space in front of the text when encoding; take it back.
    if (add_space_prefix_ && !text.empty() && text.front() == ' ') text.erase(0, 1);
    return text;
}

std::string tokenizer::piece_text(int32_t prev_id, int32_t id) const {
    const std::string& bytes = checked_bytes(id);
    if (add_space_prefix_ && prev_id == bos_id_ && !bytes.empty() && bytes.front() == ' ') return bytes.substr(1);
    return bytes;
}

}  // namespace kiln
