// Reads llama2.c's tokenizer.bin (scores + raw pieces) and turns it into a llama-spm vocabulary.
#include "kiln/formats/llama2c_tokenizer.hpp"

#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "kiln/formats/error.hpp"

namespace kiln {

namespace {

// No real piece comes near this; a bigger length means the file is not a tokenizer.
constexpr int32_t max_sane_piece_length = 1 << 16;
const std::string sentencepiece_space = "\xE2\x96\x81";  // U+2581, what SentencePiece stores for ' '

bool is_byte_piece(const std::string& piece) {
    // "<0xNN>" with two upper-case hex digits, as SentencePiece names its byte-fallback pieces.
    auto is_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
    return piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && is_hex(piece[3]) && is_hex(piece[4]) &&
           piece[5] == '>';
}

std::string spaces_to_sentencepiece(const std::string& raw) {
    std::string piece;
    piece.reserve(raw.size());
    for (char c : raw) {
        if (c == ' ')
            piece += sentencepiece_space;
        else
            piece += c;
    }
    return piece;
}

class byte_reader {
public:
    byte_reader(const std::vector<char>& bytes) : bytes_(bytes) {}
    size_t remaining() const { return bytes_.size() - position_; }
    template <typename T>
    T read() {
        T value;
        std::memcpy(&value, bytes_.data() + position_, sizeof(T));
        position_ += sizeof(T);
        return value;
    }
    std::string read_string(size_t length) {
        std::string text(bytes_.data() + position_, length);
        position_ += length;
        return text;
    }

private:
    const std::vector<char>& bytes_;
    size_t position_ = 0;
};

// Reads vocab_size records, or every record up to the end of the file when it is nullopt.
vocabulary read_llama2c_tokenizer(const std::filesystem::path& path, std::optional<uint64_t> expected_size) {
    std::error_code status_error;
    if (!std::filesystem::exists(path, status_error)) throw file_error(path, "tokenizer file does not exist");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw file_error(path, "cannot open tokenizer file");
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw file_error(path, "read error");

    if (expected_size == 0u) throw file_error(path, "the model's vocab_size is 0");
    const uint64_t vocab_size = expected_size.value_or(std::numeric_limits<uint64_t>::max());
    byte_reader reader(bytes);
    if (reader.remaining() < sizeof(uint32_t))
        throw file_error(path, "truncated tokenizer: no max_token_length header");
    // max_token_length only sizes run.c's merge buffer; kiln has no use for it.
    reader.read<uint32_t>();

    vocabulary vocab;
    vocab.model = "llama-spm";
    vocab.bos_id = vocab.eos_id = vocab.unk_id = -1;
    vocab.add_bos = true;
    vocab.add_space_prefix = true;
    for (uint64_t id = 0; id < vocab_size; ++id) {
        if (!expected_size && reader.remaining() == 0) break;
        if (reader.remaining() == 0)
            throw file_error(path, "tokenizer has " + std::to_string(id) + " tokens but the model has " +
                                       std::to_string(vocab_size) + ": it does not match the model");
        if (reader.remaining() < sizeof(float) + sizeof(int32_t))
            throw file_error(path, "truncated tokenizer: record of token " + std::to_string(id) + " is cut short");
        const float score = reader.read<float>();
        const int32_t length = reader.read<int32_t>();
        if (length < 0 || length > max_sane_piece_length)
            throw file_error(path, "token " + std::to_string(id) + " has an invalid length " + std::to_string(length));
        if (reader.remaining() < static_cast<size_t>(length))
            throw file_error(path, "truncated tokenizer: piece of token " + std::to_string(id) + " is cut short");
        const std::string raw = reader.read_string(static_cast<size_t>(length));

        token_kind kind = token_kind::normal;
        std::string piece;
        // llama2.c's exporter wrote BOS/EOS with surrounding newlines so that run.c prints them on
        // their own line; SentencePiece and GGUF call them <s> and </s>.
        if (raw == "\n<s>\n") {
            piece = "<s>";
            kind = token_kind::control;
            vocab.bos_id = static_cast<int64_t>(id);
        } else if (raw == "\n</s>\n") {
            piece = "</s>";
            kind = token_kind::control;
            vocab.eos_id = static_cast<int64_t>(id);
        } else if (raw == "<unk>") {
            piece = raw;
            kind = token_kind::unknown;
            vocab.unk_id = static_cast<int64_t>(id);
        } else if (is_byte_piece(raw)) {
            piece = raw;
            kind = token_kind::byte;
        } else {
            piece = spaces_to_sentencepiece(raw);
        }
        vocab.tokens.push_back(std::move(piece));
        vocab.scores.push_back(score);
        vocab.types.push_back(static_cast<int32_t>(kind));
    }
    if (reader.remaining() != 0)
        throw file_error(path, "tokenizer has more than " + std::to_string(vocab_size) +
                                   " tokens: it does not match the model");
    try {
        vocab.validate();
    } catch (const error& invalid) {
        throw file_error(path, invalid.what());
    }
    return vocab;
}

}  // namespace

vocabulary load_llama2c_tokenizer(const std::filesystem::path& path, uint64_t vocab_size) {
    return read_llama2c_tokenizer(path, vocab_size);
}

vocabulary load_llama2c_tokenizer(const std::filesystem::path& path) { return read_llama2c_tokenizer(path, std::nullopt); }

}  // namespace kiln
