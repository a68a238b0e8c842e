// The pre-tokenizer regexes of GPT-2, Llama 3, Qwen2 and DeepSeek, run with PCRE2 (UTF + UCP).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "pretokenizer.hpp"

#include <pcre2.h>

#include <array>

#include "kiln/formats/error.hpp"

namespace kiln {

namespace {

struct family {
    std::vector<std::string_view> names;
    std::vector<std::string_view> patterns;
    bool ignore_merges;
};

// The patterns are those of each model's tokenizer.json (llama.cpp uses the same ones for GGUF
// files). They are written for Oniguruma/fancy-regex; PCRE2 reads them the same way. Characters
// outside ASCII are spelled \x{...}: several range ends (U+1FD3, U+212A, ...) are canonical
// equivalents of other characters, and an editor that normalizes text to NFC would silently
// turn those ranges around.
const std::vector<family>& families() {
    static const std::vector<family> all = {
        {{"gpt-2", "gpt2"},
         {R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re"},
         false},
        // llama.cpp's fallback for a GGUF that names no known pre-tokenizer.
        {{"default"},
         {R"re([\p{P}\$\+<=>\^~\|]+)re",
          R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re",
          R"re(\p{N}+)re",
          R"re([0-9][0-9][0-9])re"},
         false},
        {{"llama3", "llama-bpe", "llama-v3"},
         {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         true},
        {{"qwen2"},
         {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         false},
        {{"deepseek-llm"},
         {R"re([\r\n])re",
          R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)re",
          R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re",
          R"re(\s+$)re",
          R"re([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re",
          R"re(\p{N}+)re"},
         false},
        {{"deepseek-coder"},
         {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", R"re([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re", R"re(\p{N})re"},
         false},
        {{"deepseek-v3"},
         {R"re(\p{N}{1,3})re",
          R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re",
          R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         false},
    };
    return all;
}

const family* find_family(std::string_view name) {
    for (const family& candidate : families())
        for (std::string_view alias : candidate.names)
            if (alias == name) return &candidate;
    return nullptr;
}

}  // namespace

struct pretokenizer::compiled_regex {
    pcre2_code* code = nullptr;
    ~compiled_regex() { pcre2_code_free(code); }
};

bool pretokenizer::known(std::string_view name) { return find_family(name) != nullptr; }

pretokenizer::pretokenizer(std::string_view name) {
    const family* chosen = find_family(name);
    if (!chosen) throw error("tokenizer: unknown pre-tokenizer \"" + std::string(name) + "\"");
    ignore_merges_ = chosen->ignore_merges;
    for (std::string_view pattern : chosen->patterns) {
        auto regex = std::make_unique<compiled_regex>();
        int error_code = 0;
        PCRE2_SIZE error_offset = 0;
        // UCP makes \s, \p{..} and case folding Unicode-aware; MATCH_INVALID_UTF lets invalid
        // UTF-8 input through (it simply never matches and ends up in a gap) instead of failing.
        regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code, &error_offset,
                                    nullptr);
        if (!regex->code) {
            std::array<PCRE2_UCHAR, 256> message{};
            pcre2_get_error_message(error_code, message.data(), message.size());
            throw error("tokenizer: pre-tokenizer \"" + std::string(name) + "\" regex does not compile at offset " +
                        std::to_string(error_offset) + ": " + reinterpret_cast<const char*>(message.data()));
        }
        pcre2_jit_compile(regex->code, PCRE2_JIT_COMPLETE);  // a speed-up only: matching works without it
        regexes_.push_back(std::move(regex));
    }
}

pretokenizer::~pretokenizer() = default;

std::vector<std::string_view> pretokenizer::split(std::string_view text) const {
    std::vector<std::string_view> pieces = {text};
    std::vector<std::string_view> next_pieces;
    for (const auto& regex : regexes_) {
        // Match data is per call, so that one tokenizer can encode on several threads at once.
        std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match_data(
            pcre2_match_data_create_from_pattern(regex->code, nullptr), &pcre2_match_data_free);
        if (!match_data) throw error("tokenizer: out of memory for regex match data");
        next_pieces.clear();
        for (std::string_view piece : pieces) {
            const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
            size_t gap_start = 0, search_from = 0;
            while (search_from < piece.size()) {
                const int result = pcre2_match(regex->code, subject, piece.size(), search_from, 0,
                                               match_data.get(), nullptr);
                if (result < 0) break;  // PCRE2_ERROR_NOMATCH, or an error: the rest is one gap
                const PCRE2_SIZE* offsets = pcre2_get_ovector_pointer(match_data.get());
                const size_t match_start = offsets[0], match_end = offsets[1];
                if (match_end == match_start) {
                    // None of the patterns can match empty text, but never loop if one does.
                    ++search_from;
                    continue;
                }
                if (match_start > gap_start) next_pieces.push_back(piece.substr(gap_start, match_start - gap_start));
                next_pieces.push_back(piece.substr(match_start, match_end - match_start));
                gap_start = search_from = match_end;
            }
            if (gap_start < piece.size()) next_pieces.push_back(piece.substr(gap_start));
        }
        pieces.swap(next_pieces);
    }
    return pieces;
}

}  // namespace kiln
