// Sampling of the next token: greedy, or temperature, top-k and top-p over a softmax, deterministic per seed.
#include "kiln/runtime/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "kiln/formats/error.hpp"

namespace kiln {

namespace {

// A strict total order (logit, then id), so that sorts give one answer on every standard library.
bool more_likely(float logit_a, int32_t id_a, float logit_b, int32_t id_b) {
    if (logit_a != logit_b) return logit_a > logit_b;
    return id_a < id_b;
}

}  // namespace

int32_t argmax(std::span<const float> values) {
    int32_t best = 0;
    for (size_t i = 1; i < values.size(); ++i)
        if (values[i] > values[best]) best = static_cast<int32_t>(i);
    return best;
}

sampler::sampler(sampler_params params, size_t vocab_size)
    : params_(params), vocab_size_(vocab_size), rng_state_(params.seed) {
    if (vocab_size == 0) throw error("sampler: vocab_size is 0");
    if (!(params.temperature >= 0.0f)) throw error("sampler: temperature must be >= 0");
    if (params.top_k < 0) throw error("sampler: top_k must be >= 0");
    if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) throw error("sampler: top_p must be in (0, 1]");
    candidates_.resize(vocab_size);
    probabilities_.resize(vocab_size);
}

uint64_t sampler::next_random() {
    rng_state_ += 0x9E3779B97F4A7C15ull;
    uint64_t z = rng_state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double sampler::next_unit_double() { return static_cast<double>(next_random() >> 11) * 0x1.0p-53; }

int32_t sampler::sample(std::span<const float> logits) {
    if (logits.size() != vocab_size_)
        throw error("sampler: got " + std::to_string(logits.size()) + " logits, expected " +
                    std::to_string(vocab_size_));
    if (params_.temperature == 0.0f || params_.top_k == 1) return argmax(logits);

    const auto by_likelihood = [](const candidate& a, const candidate& b) {
        return more_likely(a.logit, a.id, b.logit, b.id);
    };
    size_t kept = vocab_size_;
    for (size_t i = 0; i < vocab_size_; ++i) candidates_[i] = {logits[i], static_cast<int32_t>(i)};
    // Candidates are ordered by the raw logits, before dividing by the temperature, so that rounding
    // in the division cannot reorder or tie them.
    const bool top_k_on = params_.top_k > 0 && static_cast<size_t>(params_.top_k) < vocab_size_;
    const bool top_p_on = params_.top_p < 1.0f;
    if (top_k_on) {
        kept = static_cast<size_t>(params_.top_k);
        std::partial_sort(candidates_.begin(), candidates_.begin() + kept, candidates_.end(), by_likelihood);
    }

    // Softmax over the kept candidates, in double so that the result does not depend on summation
    // order beyond the last bits.
    float max_logit = candidates_[0].logit;
    for (size_t i = 1; i < kept; ++i) max_logit = std::max(max_logit, candidates_[i].logit);
    const double inverse_temperature = 1.0 / static_cast<double>(params_.temperature);
    auto weight = [&](const candidate& c) {
        return std::exp((static_cast<double>(c.logit) - max_logit) * inverse_temperature);
    };
    double total = 0.0;
    for (size_t i = 0; i < kept; ++i) total += probabilities_[i] = weight(candidates_[i]);

    if (top_p_on) {
        if (!top_k_on) {
            // Sorting the whole vocabulary per token is the slow part, so drop first what cannot be in
            // the nucleus: if a token of probability q is in it, the tokens from it on (at most n, none
            // more likely) hold more than 1 - top_p, so q > (1 - top_p) / n.
            const double cutoff = (1.0 - static_cast<double>(params_.top_p)) / static_cast<double>(kept) * total;
            size_t survivors = 0;
            for (size_t i = 0; i < kept; ++i)
                if (probabilities_[i] >= cutoff) candidates_[survivors++] = candidates_[i];
            kept = survivors;
            std::sort(candidates_.begin(), candidates_.begin() + kept, by_likelihood);
            for (size_t i = 0; i < kept; ++i) probabilities_[i] = weight(candidates_[i]);
        }
        // Candidates are sorted here: keep the shortest prefix whose mass reaches top_p (at least one).
        const double mass_needed = static_cast<double>(params_.top_p) * total;
        double mass = 0.0;
        size_t prefix = 0;
        while (prefix < kept) {
            mass += probabilities_[prefix++];
            if (mass >= mass_needed) break;
        }
        kept = prefix;
        total = mass;
    }

    const double target = next_unit_double() * total;
    double cumulative = 0.0;
    for (size_t i = 0; i < kept; ++i) {
        cumulative += probabilities_[i];
        if (target < cumulative) return candidates_[i].id;
    }
    return candidates_[kept - 1].id;  // target fell past the sum by rounding
}

}  // namespace kiln
