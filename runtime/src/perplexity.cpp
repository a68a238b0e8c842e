// Perplexity over fixed windows (llama-perplexity's scoring) and KL-divergence against saved logits.
#include "kiln/runtime/perplexity.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "kiln/formats/error.hpp"

namespace kiln {
namespace {

constexpr char logprobs_magic[4] = {'K', 'L', 'N', 'L'};

// FNV-1a over the token ids: cheap, and enough to notice logits saved from another text.
uint64_t hash_tokens(const std::vector<int32_t>& tokens) {
    uint64_t h = 1469598103934665603ull;
    for (int32_t t : tokens) {
        h ^= uint32_t(t);
        h *= 1099511628211ull;
    }
    return h;
}

// log-softmax of one row, in double for the sum.
void log_softmax(std::span<const float> logits, float* out) {
    const float max = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float l : logits) sum += std::exp(double(l) - max);
    const double log_sum = std::log(sum) + max;
    for (size_t i = 0; i < logits.size(); ++i) out[i] = float(double(logits[i]) - log_sum);
}

}  // namespace

void saved_logprobs::save(const std::filesystem::path& path) const {
    auto temp = path;
    temp += ".tmp";
    {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        if (!out) throw file_error(path, "cannot create");
        const uint32_t version = 1;
        const uint64_t n = positions();
        out.write(logprobs_magic, 4);
        out.write(reinterpret_cast<const char*>(&version), 4);
        out.write(reinterpret_cast<const char*>(&vocab), 4);
        out.write(reinterpret_cast<const char*>(&n_ctx), 4);
        out.write(reinterpret_cast<const char*>(&n), 8);
        out.write(reinterpret_cast<const char*>(&token_hash), 8);
        out.write(reinterpret_cast<const char*>(logprobs.data()), std::streamsize(logprobs.size() * sizeof(float)));
        if (!out.flush()) {
            std::filesystem::remove(temp);
            throw file_error(path, "write failed");
        }
    }
    std::filesystem::rename(temp, path);
}

saved_logprobs saved_logprobs::load(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw file_error(path, "cannot open");
    char magic[4];
    uint32_t version = 0;
    uint64_t n = 0;
    saved_logprobs s;
    in.read(magic, 4);
    in.read(reinterpret_cast<char*>(&version), 4);
    in.read(reinterpret_cast<char*>(&s.vocab), 4);
    in.read(reinterpret_cast<char*>(&s.n_ctx), 4);
    in.read(reinterpret_cast<char*>(&n), 8);
    in.read(reinterpret_cast<char*>(&s.token_hash), 8);
    if (!in || std::memcmp(magic, logprobs_magic, 4) != 0) throw file_error(path, "not a kiln saved-logits file");
    if (version != 1) throw file_error(path, "unsupported saved-logits version " + std::to_string(version));
    const uint64_t file_size = std::filesystem::file_size(path);
    if (s.vocab == 0 || n > (file_size - 32) / 4 / s.vocab || 32 + n * s.vocab * 4 != file_size)
        throw file_error(path, "size does not match its header (truncated?)");
    s.logprobs.resize(n * s.vocab);
    in.read(reinterpret_cast<char*>(s.logprobs.data()), std::streamsize(s.logprobs.size() * sizeof(float)));
    if (!in) throw file_error(path, "truncated");
    return s;
}

perplexity_result compute_perplexity(language_model& lm, const std::vector<int32_t>& tokens,
                                     const perplexity_options& options) {
    const size_t n_ctx = size_t(options.n_ctx), vocab = size_t(lm.vocab_size());
    if (n_ctx < 4) throw error("the perplexity context must be at least 4 tokens");
    if (n_ctx > size_t(lm.context_length()))
        throw error("the perplexity context " + std::to_string(n_ctx) + " is larger than the model's context " +
                    std::to_string(lm.context_length()));
    size_t chunks = tokens.size() / n_ctx;
    if (options.max_chunks) chunks = std::min(chunks, options.max_chunks);
    if (chunks == 0)
        throw error("the text has " + std::to_string(tokens.size()) + " tokens, fewer than one window of " +
                    std::to_string(n_ctx));
    // Scored positions of each window: its second half, each predicting the token after it.
    const size_t first = n_ctx / 2, scored_per_chunk = n_ctx - 1 - first;
    const uint64_t token_hash = hash_tokens(std::vector<int32_t>(tokens.begin(), tokens.begin() + long(chunks * n_ctx)));
    if (options.base) {
        const auto& b = *options.base;
        if (b.vocab != vocab || b.n_ctx != n_ctx || b.token_hash != token_hash || b.positions() != chunks * scored_per_chunk)
            throw error("the saved base logits come from another text, vocabulary, context or chunk count");
    }
    if (options.save) {
        options.save->vocab = uint32_t(vocab);
        options.save->n_ctx = uint32_t(n_ctx);
        options.save->token_hash = token_hash;
        options.save->logprobs.assign(chunks * scored_per_chunk * vocab, 0.0f);
    }

    double nll_sum = 0, nll_sq_sum = 0;
    std::vector<float> logprobs(vocab);
    std::vector<double> klds;
    size_t agree = 0, position = 0;
    std::vector<int32_t> window(n_ctx);
    for (size_t c = 0; c < chunks; ++c) {
        std::copy_n(tokens.begin() + long(c * n_ctx), n_ctx, window.begin());
        if (options.bos_id >= 0) window[0] = options.bos_id;
        std::span<const float> all = lm.forward_batch(window, 0, true);
        for (size_t j = first; j < n_ctx - 1; ++j, ++position) {
            log_softmax(all.subspan(j * vocab, vocab), logprobs.data());
            const double nll = -double(logprobs[size_t(window[j + 1])]);
            nll_sum += nll;
            nll_sq_sum += nll * nll;
            if (options.save) std::copy(logprobs.begin(), logprobs.end(), options.save->logprobs.begin() + long(position * vocab));
            if (options.base) {
                const float* base = options.base->logprobs.data() + position * vocab;
                double kld = 0;
                for (size_t v = 0; v < vocab; ++v) kld += std::exp(double(base[v])) * (double(base[v]) - logprobs[v]);
                klds.push_back(std::max(0.0, kld));
                agree += std::max_element(base, base + vocab) - base ==
                         std::max_element(logprobs.begin(), logprobs.end()) - logprobs.begin();
            }
        }
        if (options.progress) options.progress(c + 1, chunks);
    }

    perplexity_result result;
    result.chunks = chunks;
    result.scored_tokens = position;
    const double n = double(position), mean = nll_sum / n;
    result.ppl = std::exp(mean);
    const double variance = std::max(0.0, nll_sq_sum / n - mean * mean);
    result.ppl_error = n > 1 ? result.ppl * std::sqrt(variance / (n - 1)) : 0.0;
    if (options.base) {
        kld_stats k;
        k.positions = klds.size();
        double sum = 0;
        for (double d : klds) sum += d;
        k.mean = sum / double(klds.size());
        std::sort(klds.begin(), klds.end());
        k.p99 = klds[std::min(klds.size() - 1, size_t(0.99 * double(klds.size())))];
        k.top1_agreement = double(agree) / double(klds.size());
        result.kld = k;
    }
    return result;
}

}  // namespace kiln
