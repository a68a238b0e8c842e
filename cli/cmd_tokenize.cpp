// `kiln tokenize`: the token ids of a text under any tokenizer file, without loading weights, so a
// tokenizer can be checked against another implementation's ids.
#include <cstdio>
#include <string>

#include "commands.hpp"
#include "kiln/formats/vocabulary_file.hpp"
#include "kiln/runtime/tokenizer.hpp"

namespace kiln::cli {
namespace {

struct tokenize_args {
    std::string file;
    std::string prompt;
    bool ids_only = false;
    bool no_bos = false;
    bool parse_special = false;
};

// Length of the well-formed UTF-8 sequence at s[i], or 0 when the bytes there are not one.
size_t utf8_sequence_length(const std::string& s, size_t i) {
    const auto byte = static_cast<unsigned char>(s[i]);
    const size_t length = byte >= 0xF0 && byte <= 0xF4 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC2 && byte < 0xE0 ? 2 : 0;
    if (length == 0 || i + length > s.size()) return 0;
    for (size_t k = 1; k < length; ++k)
        if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
    return length;
}

// A token's text between single quotes on one line: control characters and bytes that are not
// whole UTF-8 characters (byte tokens, pieces of a split character) are escaped.
std::string quoted(const std::string& text) {
    std::string out = "'";
    for (size_t i = 0; i < text.size();) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte == '\n') out += "\\n";
        else if (byte == '\t') out += "\\t";
        else if (byte == '\r') out += "\\r";
        else if (byte == '\'' || byte == '\\') (out += '\\') += char(byte);
        else if (byte >= 0x20 && byte < 0x7F) out += char(byte);
        else if (size_t length = utf8_sequence_length(text, i); length > 0) {
            out.append(text, i, length);
            i += length;
            continue;
        } else {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02X", byte);
            out += escaped;
        }
        ++i;
    }
    return out + "'";
}

void run_tokenize(const tokenize_args& args) {
    const vocabulary_file loaded = load_vocabulary_file(args.file);
    const vocabulary& vocab = loaded.vocab;
    const tokenizer tok(vocab);
    const std::vector<int32_t> ids = tok.encode(args.prompt, vocab.add_bos && !args.no_bos, args.parse_special);
    if (args.ids_only) {
        std::string line = "[";
        for (size_t i = 0; i < ids.size(); ++i) (line += i ? ", " : "") += std::to_string(ids[i]);
        std::printf("%s]\n", line.c_str());
        return;
    }
    for (int32_t id : ids) {
        // Control tokens stand for no text: show their name (<s>, <|im_end|>) instead.
        const std::string& bytes = tok.token_bytes(id);
        const std::string& shown = bytes.empty() ? vocab.tokens[size_t(id)] : bytes;
        std::printf("%6d %s\n", id, quoted(shown).c_str());
    }
}

}  // namespace

void setup_tokenize(CLI::App& app) {
    auto args = std::make_shared<tokenize_args>();
    auto* cmd = app.add_subcommand(
        "tokenize", "Print the token ids of a text: ids with their text one per line, or --ids as one list");
    cmd->add_option("-m,--model", args->file,
                    "Tokenizer source, recognised by content: a .kiln or GGUF model, tokenizer.json, "
                    "tokenizer.model, llama2.c tokenizer.bin, or a Hugging Face folder (weights are not read)")
        ->required();
    cmd->add_option("-p,--prompt", args->prompt, "Text to tokenize")->required();
    cmd->add_flag("--ids", args->ids_only, "Print only the ids, as [1, 15043, 3186]");
    cmd->add_flag("--no-bos", args->no_bos, "Do not add BOS even when the vocabulary asks for it");
    cmd->add_flag("--parse-special", args->parse_special,
                  "Encode special tokens written in the text (<s>, <|im_end|>) as their ids; byte-level BPE "
                  "vocabularies always do");
    cmd->callback([args] { run_tokenize(*args); });
}

}  // namespace kiln::cli
