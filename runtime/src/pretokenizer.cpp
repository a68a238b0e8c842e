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
// files). They are written for Oniguruma/fancy-regex; PCRE2 reads them the same way.
const std::vector<family>& families() {
    static const std::vector<family> all = {
        {{"gpt-2", "gpt2"},
         {R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re"},
         false},
        {{"llama3", "llama-bpe", "llama-v3"},
         {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         true},
        {{"qwen2"},
         {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         false},
        {{"deepseek-llm"},
         {R"re([\r\n])re",
          R"re(\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+)re",
          R"re(\s?[!-/:-~！-／：-～‘-‟　-。]+)re",
          R"re(\s+$)re",
          R"re([一-龥ࠀ-一가-퟿]+)re",
          R"re(\p{N}+)re"},
         false},
        {{"deepseek-coder"},
         {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", R"re([一-龥ࠀ-一가-퟿]+)re", R"re(\p{N})re"},
         false},
        {{"deepseek-v3"},
         {R"re(\p{N}{1,3})re",
          R"re([一-龥぀-ゟ゠-ヿ]+)re",
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
