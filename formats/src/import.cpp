// Recognises an input model by its content and hands it to the matching importer.
#include "kiln/formats/import.hpp"

#include <cstring>
#include <fstream>

#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"
#include "kiln/formats/hf_config.hpp"
#include "file_head.hpp"

namespace kiln {
namespace {

using detail::first_bytes;

}  // namespace

model_source open_model_source(const std::filesystem::path& input, const import_options& options) {
    std::error_code ec;
    if (!std::filesystem::exists(input, ec)) throw file_error(input, "no such file or directory");
    if (std::filesystem::is_directory(input, ec)) {
        if (!std::filesystem::exists(input / "config.json", ec))
            throw file_error(input, "a folder without config.json is not a Hugging Face model");
        return load_hf_folder(input);
    }
    const std::string magic = first_bytes(input, 4);
    if (magic.empty()) throw file_error(input, "empty file");
    if (magic == "KILN") throw file_error(input, "already a .kiln file (use `kiln quantize` to change its type)");
    if (magic == "GGUF") return load_gguf(input);
    // Anything else is taken as a llama2.c checkpoint, whose header validation is strict.
    if (!options.tokenizer)
        throw file_error(input, "a llama2.c checkpoint needs its tokenizer: pass --tokenizer tokenizer.bin");
    return load_llama2c(input, *options.tokenizer);
}

}  // namespace kiln
