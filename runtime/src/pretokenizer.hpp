// Splits text into words before byte-level BPE, with the regexes each model family was trained with.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// A sequence of Unicode regexes (PCRE2 with UTF and UCP). Each one splits every piece left by the
// previous one into its matches and the gaps between them (Hugging Face's "Isolated" split), so no
// byte of the text is lost.
class pretokenizer {
public:
    // name: a tokenizer.pre value, GGUF spelling accepted ("gpt-2", "llama3" or "llama-bpe", "qwen2",
    // "deepseek-llm", "deepseek-coder", "deepseek-v3"). Throws kiln::error for an unknown name.
    explicit pretokenizer(std::string_view name);
    ~pretokenizer();
    pretokenizer(const pretokenizer&) = delete;
    pretokenizer& operator=(const pretokenizer&) = delete;

    // The words of text, in order; their concatenation is text. The views point into text.
    std::vector<std::string_view> split(std::string_view text) const;

    // Whether the pre-tokenizer's family looks up a whole word before merging (Llama 3 sets
    // ignore_merges in its tokenizer.json).
    bool ignore_merges() const { return ignore_merges_; }

    // True for the names the constructor accepts.
    static bool known(std::string_view name);

private:
    struct compiled_regex;
    std::vector<std::unique_ptr<compiled_regex>> regexes_;
    bool ignore_merges_ = false;
};

}  // namespace kiln
