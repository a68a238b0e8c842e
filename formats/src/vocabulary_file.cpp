// Recognising a tokenizer file by its first bytes (see vocabulary_file.hpp).
#include "kiln/formats/vocabulary_file.hpp"

#include <cstdint>
#include <fstream>

#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"
#include "kiln/formats/hf_config.hpp"
#include "file_head.hpp"
#include "kiln/formats/hf_tokenizer.hpp"
#include "kiln/formats/kiln_file.hpp"
#include "kiln/formats/llama2c_tokenizer.hpp"

namespace kiln {
namespace {

using detail::first_bytes;

vocabulary_file from_folder(const std::filesystem::path& dir) {
    if (std::filesystem::exists(dir / "tokenizer.json")) return {load_hf_tokenizer(dir / "tokenizer.json"), "hf folder"};
    if (std::filesystem::exists(dir / "tokenizer.model"))
        return {load_sentencepiece_model(dir / "tokenizer.model"), "hf folder"};
    throw file_error(dir, "a folder without tokenizer.json or tokenizer.model");
}

}  // namespace

vocabulary_file load_vocabulary_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw file_error(path, "no such file or directory");
    if (std::filesystem::is_directory(path, ec)) return from_folder(path);
    const std::string head = first_bytes(path, 8);
    if (head.empty()) throw file_error(path, "empty file");
    if (head.starts_with("KILN")) {
        const kiln_file file = kiln_file::open(path);
        try {
            return {vocabulary::from_metadata(file.meta()), "kiln"};
        } catch (const file_error&) {
            throw;
        } catch (const error& e) {
            throw file_error(path, e.what());
        }
    }
    if (head.starts_with("GGUF")) return {vocabulary_from_gguf(gguf_file::open(path)), "gguf"};
    const size_t first = head.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && head[first] == '{') return {load_hf_tokenizer(path), "tokenizer.json"};
    // A SentencePiece ModelProto starts with field 1 (pieces, length-delimited: tag 0x0A) and a
    // non-zero length; tokenizer.bin starts with a small little-endian u32 max_token_length, whose
    // second byte is 0 for any real vocabulary.
    if (head.size() >= 2 && head[0] == '\x0A' && head[1] != '\0') return {load_sentencepiece_model(path), "sentencepiece"};
    const std::string known = "not a tokenizer kiln knows (.kiln, GGUF, tokenizer.json, tokenizer.model, llama2.c tokenizer.bin)";
    if (head.size() < 4 || head[2] != '\0' || head[3] != '\0' || (head[0] == '\0' && head[1] == '\0'))
        throw file_error(path, known);
    try {
        return {load_llama2c_tokenizer(path), "llama2.c"};
    } catch (const file_error& e) {
        // Other binary files (a llama2.c checkpoint, say) also start with a small u32: say both.
        const std::string what = e.what(), prefix = path.string() + ": ";
        throw file_error(path, known + "; read as tokenizer.bin: " +
                                   (what.starts_with(prefix) ? what.substr(prefix.size()) : what));
    }
}

}  // namespace kiln
