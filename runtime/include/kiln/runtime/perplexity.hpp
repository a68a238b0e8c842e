// Perplexity of a token sequence scored the way llama-perplexity scores it, and KL-divergence
// of a model's next-token distributions against logits saved from another (base) model.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include "kiln/runtime/language_model.hpp"

namespace kiln {

// Log-probabilities of every scored position, for --save-logits / --kl-divergence. On disk:
// "KLNL", u32 version 1, u32 vocab, u32 n_ctx, u64 positions, u64 hash of the token ids, then
// positions x vocab f32 log-probabilities.
struct saved_logprobs {
    uint32_t vocab = 0;
    uint32_t n_ctx = 0;
    uint64_t token_hash = 0;
    std::vector<float> logprobs;  // positions x vocab
    size_t positions() const { return vocab ? logprobs.size() / vocab : 0; }

    void save(const std::filesystem::path& path) const;
    static saved_logprobs load(const std::filesystem::path& path);  // throws kiln::file_error
};

struct kld_stats {
    double mean = 0;            // mean KL(base || model) per position, nats
    double p99 = 0;             // 99th percentile
    double top1_agreement = 0;  // fraction of positions where both argmaxes agree
    size_t positions = 0;
};

struct perplexity_result {
    double ppl = 0;
    double ppl_error = 0;  // standard error, from the spread of per-token log-likelihoods
    size_t scored_tokens = 0;
    size_t chunks = 0;
    std::optional<kld_stats> kld;
};

struct perplexity_options {
    int32_t n_ctx = 256;       // window length; each window starts with BOS and scores its second half
    size_t max_chunks = 0;     // 0 = all whole windows in the text
    int32_t bos_id = 1;        // -1: keep the window's first token
    saved_logprobs* save = nullptr;        // filled with this model's log-probabilities when set
    const saved_logprobs* base = nullptr;  // compared against when set (KL-divergence)
    std::function<void(size_t done, size_t total)> progress;
};

// tokens: the whole text, tokenized once (with BOS first, as llama-perplexity does). Throws
// kiln::error when the text is shorter than one window, or when the base logits were saved from
// another text, vocabulary or context.
perplexity_result compute_perplexity(language_model& lm, const std::vector<int32_t>& tokens,
                                     const perplexity_options& options);

}  // namespace kiln
