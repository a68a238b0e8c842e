// Byte-level BPE encoding (model "byte-bpe", GPT-2 style): special tokens, regex pre-tokenizer, merges by rank.
#include <algorithm>
#include <optional>
#include <unordered_map>

#include "kiln/formats/error.hpp"
#include "kiln/runtime/tokenizer.hpp"
#include "pretokenizer.hpp"
#include "symbol_merge.hpp"

namespace kiln {

namespace {

void append_utf8(std::string& out, uint32_t code_point) {
    if (code_point < 0x80) {
        out += static_cast<char>(code_point);
    } else if (code_point < 0x800) {
        out += static_cast<char>(0xC0 | (code_point >> 6));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else {
        out += static_cast<char>(0xE0 | (code_point >> 12));
        out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    }
}

// GPT-2's byte-level alphabet. Bytes that are printable Latin-1 characters stand for themselves;
// the other 68 (controls, space, DEL, NBSP, soft hyphen) are moved, in byte order, to U+0100 and
// up, so that every byte is a visible character and a piece never holds a raw space ("Ġ" is ' ').
const std::array<uint32_t, 256>& byte_code_points() {
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> code_points{};
        uint32_t next_shifted = 256;
        for (uint32_t byte = 0; byte < 256; ++byte) {
            const bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
            code_points[byte] = printable ? byte : next_shifted++;
        }
        return code_points;
    }();
    return table;
}

// The UTF-8 text of each byte's symbol.
const std::array<std::string, 256>& byte_symbols() {
    static const std::array<std::string, 256> table = [] {
        std::array<std::string, 256> symbols;
        for (size_t byte = 0; byte < 256; ++byte) append_utf8(symbols[byte], byte_code_points()[byte]);
        return symbols;
    }();
    return table;
}

// The raw bytes a byte-level piece stands for. Characters outside the alphabet (which a well-formed
// vocabulary does not have) are kept as their UTF-8.
std::string byte_level_to_bytes(const std::string& piece, const std::unordered_map<std::string, char>& byte_of_symbol) {
    std::string bytes;
    for (size_t i = 0; i < piece.size();) {
        size_t length = 1;
        const auto lead = static_cast<unsigned char>(piece[i]);
        if (lead >= 0xF0)
            length = 4;
        else if (lead >= 0xE0)
            length = 3;
        else if (lead >= 0xC0)
            length = 2;
        length = std::min(length, piece.size() - i);
        const std::string symbol = piece.substr(i, length);
        if (auto found = byte_of_symbol.find(symbol); found != byte_of_symbol.end())
            bytes += found->second;
        else
            bytes += symbol;
        i += length;
    }
    return bytes;
}

uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

void tokenizer::build_bpe_tables(const vocabulary& vocab) {
    pretokenizer_ = std::make_shared<const pretokenizer>(vocab.pre.empty() ? "gpt-2" : vocab.pre);
    ignore_merges_ = pretokenizer_->ignore_merges();

    std::unordered_map<std::string, char> byte_of_symbol;
    for (size_t byte = 0; byte < 256; ++byte) byte_of_symbol.emplace(byte_symbols()[byte], static_cast<char>(byte));

    token_bytes_.resize(pieces_.size());
    piece_ids_.reserve(pieces_.size());
    for (size_t index = 0; index < pieces_.size(); ++index) {
        const int32_t id = static_cast<int32_t>(index);
        const std::string& piece = pieces_[index];
        switch (static_cast<token_kind>(types_[index])) {
        case token_kind::control:
            // Matched in text (chat templates spell them out) but printed as nothing.
            collect_special_token(piece, id);
            break;
        case token_kind::user_defined:
            // Added tokens are stored as plain text, not in the byte-level alphabet.
            token_bytes_[index] = piece;
            collect_special_token(piece, id);
            break;
        case token_kind::unused:
            break;  // placeholders for ids the vocabulary leaves empty
        default:
            token_bytes_[index] = byte_level_to_bytes(piece, byte_of_symbol);
            piece_ids_.emplace(piece, id);
            break;
        }
    }
    index_special_tokens();

    for (size_t byte = 0; byte < 256; ++byte) {
        auto found = piece_ids_.find(byte_symbols()[byte]);
        byte_symbol_ids_[byte] = found == piece_ids_.end() ? -1 : found->second;
    }

    bpe_merges_.reserve(vocab.merges.size());
    std::string joined;
    for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
        const std::string& rule = vocab.merges[rank];
        const size_t separator = rule.find(' ', 1);
        if (separator == std::string::npos)
            throw error("tokenizer: merge " + std::to_string(rank) + " \"" + rule + "\" is not two pieces");
        const std::string left = rule.substr(0, separator), right = rule.substr(separator + 1);
        auto left_id = piece_ids_.find(left), right_id = piece_ids_.find(right);
        joined = left + right;
        auto merged_id = piece_ids_.find(joined);
        // A rule whose parts or result are not tokens can never fire; Hugging Face refuses such a
        // file, but skipping the rule gives the same encodings.
        if (left_id == piece_ids_.end() || right_id == piece_ids_.end() || merged_id == piece_ids_.end()) continue;
        bpe_merges_.emplace(pair_key(left_id->second, right_id->second),
                            bpe_merge{static_cast<int32_t>(rank), merged_id->second});
    }
}

void tokenizer::encode_bpe(std::string_view text, std::vector<int32_t>& ids) const {
    for (const auto& [fragment, id] : split_special(text)) {
        if (id >= 0) {
            ids.push_back(id);
            continue;
        }
        for (std::string_view word : pretokenizer_->split(fragment)) encode_bpe_word(word, ids);
    }
}

void tokenizer::encode_bpe_word(std::string_view word, std::vector<int32_t>& ids) const {
    if (ignore_merges_) {
        std::string mapped;
        for (char byte : word) mapped += byte_symbols()[static_cast<unsigned char>(byte)];
        if (auto found = piece_ids_.find(mapped); found != piece_ids_.end()) {
            ids.push_back(found->second);
            return;
        }
    }
    std::vector<int32_t> symbols;
    symbols.reserve(word.size());
    for (char byte : word) {
        const int32_t symbol_id = byte_symbol_ids_[static_cast<unsigned char>(byte)];
        if (symbol_id >= 0)
            symbols.push_back(symbol_id);
        else if (unk_id_ >= 0)
            symbols.push_back(unk_id_);
    }
    detail::merge_symbols(symbols, [&](int32_t left, int32_t right) -> std::optional<detail::merge_candidate> {
        auto found = bpe_merges_.find(pair_key(left, right));
        if (found == bpe_merges_.end()) return std::nullopt;
        // Lower ranks merge first; the merge loop takes the highest priority.
        return detail::merge_candidate{-static_cast<double>(found->second.rank), found->second.merged_id};
    });
    ids.insert(ids.end(), symbols.begin(), symbols.end());
}

}  // namespace kiln
