// Reading a SentencePiece model protobuf (tokenizer.model) with a minimal wire-format parser:
// ModelProto { 1: repeated SentencePiece {1 piece, 2 score, 3 type}, 2: TrainerSpec,
// 3: NormalizerSpec }. Only the fields a "llama-spm" vocabulary needs are read.
#include <bit>
#include <cstring>
#include <string_view>

#include "hf_gguf_mapped_file.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/hf_config.hpp"

namespace kiln {
namespace {

enum wire_type : uint32_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

// One protobuf message body; every read is checked against the message's end.
class proto_reader {
public:
    proto_reader(std::string_view bytes, const std::filesystem::path& path) : bytes_(bytes), path_(path) {}

    bool done() const { return pos_ == bytes_.size(); }

    uint64_t read_varint() {
        uint64_t value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ >= bytes_.size()) fail("truncated varint");
            const auto byte = static_cast<uint8_t>(bytes_[pos_++]);
            value |= static_cast<uint64_t>(byte & 0x7f) << shift;
            if (!(byte & 0x80)) return value;
        }
        fail("varint longer than 10 bytes");
    }

    // Reads a field key; returns false at the end of the message.
    bool next(uint32_t& field, uint32_t& wire) {
        if (done()) return false;
        const uint64_t key = read_varint();
        field = static_cast<uint32_t>(key >> 3);
        wire = static_cast<uint32_t>(key & 7);
        if (field == 0) fail("field number 0");
        return true;
    }

    std::string_view read_bytes() {
        const uint64_t length = read_varint();
        if (length > bytes_.size() - pos_) fail("length " + std::to_string(length) + " runs past the end of its message");
        std::string_view s = bytes_.substr(pos_, static_cast<size_t>(length));
        pos_ += static_cast<size_t>(length);
        return s;
    }

    uint32_t read_fixed32() {
        if (bytes_.size() - pos_ < 4) fail("truncated fixed32");
        uint32_t v;
        std::memcpy(&v, bytes_.data() + pos_, 4);
        pos_ += 4;
        return v;
    }

    void skip(uint32_t wire) {
        switch (wire) {
            case varint: read_varint(); return;
            case fixed64:
                if (bytes_.size() - pos_ < 8) fail("truncated fixed64");
                pos_ += 8;
                return;
            case length_delimited: read_bytes(); return;
            case fixed32: read_fixed32(); return;
            default: fail("unsupported wire type " + std::to_string(wire));  // groups (3, 4) are long deprecated
        }
    }

    void expect(uint32_t wire, uint32_t wanted, const char* field_name) {
        if (wire != wanted) fail(std::string("field ") + field_name + " has wire type " + std::to_string(wire));
    }

    [[noreturn]] void fail(const std::string& problem) const {
        throw file_error(path_, "malformed SentencePiece model: " + problem);
    }

private:
    std::string_view bytes_;
    const std::filesystem::path& path_;
    size_t pos_ = 0;
};

int64_t as_int32(uint64_t varint_value) { return static_cast<int32_t>(static_cast<uint32_t>(varint_value)); }

}  // namespace

vocabulary load_sentencepiece_model(const std::filesystem::path& path) {
    const auto map = detail::mapped_file::open(path);
    const auto bytes = map->bytes();
    proto_reader model(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);

    vocabulary vocab;
    vocab.model = "llama-spm";
    // proto2 defaults of TrainerSpec and NormalizerSpec, used when the fields are absent.
    vocab.unk_id = 0;
    vocab.bos_id = 1;
    vocab.eos_id = 2;
    vocab.add_space_prefix = true;
    vocab.add_bos = true;
    int64_t model_type = 1;  // UNIGRAM

    uint32_t field, wire;
    while (model.next(field, wire)) {
        if (field == 1) {  // SentencePiece
            model.expect(wire, length_delimited, "pieces");
            proto_reader piece(model.read_bytes(), path);
            std::string text;
            float score = 0.0f;
            int32_t type = static_cast<int32_t>(token_kind::normal);
            while (piece.next(field, wire)) {
                if (field == 1) {
                    piece.expect(wire, length_delimited, "piece");
                    text = std::string(piece.read_bytes());
                } else if (field == 2) {
                    piece.expect(wire, fixed32, "score");
                    score = std::bit_cast<float>(piece.read_fixed32());
                } else if (field == 3) {
                    piece.expect(wire, varint, "type");
                    const int64_t t = as_int32(piece.read_varint());
                    if (t < 1 || t > 6) piece.fail("piece type " + std::to_string(t));
                    type = static_cast<int32_t>(t);
                } else {
                    piece.skip(wire);
                }
            }
            vocab.tokens.push_back(std::move(text));
            vocab.scores.push_back(score);
            vocab.types.push_back(type);
        } else if (field == 2) {  // TrainerSpec
            model.expect(wire, length_delimited, "trainer_spec");
            proto_reader spec(model.read_bytes(), path);
            while (spec.next(field, wire)) {
                // 3 model_type, 40 unk_id, 41 bos_id, 42 eos_id: all varints.
                if ((field == 3 || (field >= 40 && field <= 42)) && wire == varint) {
                    const int64_t v = as_int32(spec.read_varint());
                    if (field == 3) model_type = v;
                    if (field == 40) vocab.unk_id = v;
                    if (field == 41) vocab.bos_id = v;
                    if (field == 42) vocab.eos_id = v;
                } else {
                    spec.skip(wire);
                }
            }
        } else if (field == 3) {  // NormalizerSpec
            model.expect(wire, length_delimited, "normalizer_spec");
            proto_reader spec(model.read_bytes(), path);
            while (spec.next(field, wire)) {
                if (field == 3 && wire == varint) vocab.add_space_prefix = spec.read_varint() != 0;  // add_dummy_prefix
                else spec.skip(wire);
            }
        } else {
            model.skip(wire);
        }
    }
    if (vocab.tokens.empty()) throw file_error(path, "SentencePiece model has no pieces");
    // kiln's llama-spm tokenizer merges by score (BPE); unigram models need Viterbi segmentation.
    if (model_type != 2)
        throw file_error(path, "SentencePiece model type " + std::to_string(model_type) + " is not BPE; kiln supports BPE models");
    const auto n = static_cast<int64_t>(vocab.tokens.size());
    for (int64_t* id : {&vocab.unk_id, &vocab.bos_id, &vocab.eos_id})
        if (*id < -1 || *id >= n) throw file_error(path, "special token id " + std::to_string(*id) + " is out of range");
    try {
        vocab.validate();
    } catch (const error& e) {
        throw file_error(path, e.what());
    }
    return vocab;
}

}  // namespace kiln
