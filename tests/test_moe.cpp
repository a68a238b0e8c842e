// Mixture-of-experts routing: top-k against a plain sort on random logits, deterministic ties,
// and DeepSeek-V2's weight rules (softmax, optional renormalisation, scaling factor).
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "kiln/runtime/moe_routing.hpp"

using namespace kiln;

namespace {

// The obvious top-k: sort indices by (score descending, index ascending), keep k.
std::vector<int32_t> sorted_top_k(const std::vector<float>& scores, size_t k) {
    std::vector<int32_t> ids(scores.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return scores[size_t(a)] > scores[size_t(b)]; });
    ids.resize(k);
    return ids;
}

}  // namespace

TEST_CASE("moe: top-k picks the same experts as a reference sort on random logits") {
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    for (size_t n : {8u, 64u, 160u})
        for (size_t k : {1u, 2u, 6u, 8u}) {
            if (k > n) continue;
            for (int trial = 0; trial < 200; ++trial) {
                std::vector<float> scores(n);
                for (float& s : scores) s = normal(rng);
                // Coarse values now and then, so that ties happen.
                if (trial % 3 == 0)
                    for (float& s : scores) s = std::round(s);
                std::vector<int32_t> ids(k);
                top_k_indices(scores.data(), n, k, ids.data());
                CHECK(ids == sorted_top_k(scores, k));
            }
        }
}

TEST_CASE("moe: ties go to the lower expert index") {
    const std::vector<float> equal(8, 0.5f);
    std::vector<int32_t> ids(3);
    top_k_indices(equal.data(), 8, 3, ids.data());
    CHECK(ids == std::vector<int32_t>{0, 1, 2});
    const std::vector<float> scores = {0.1f, 0.9f, 0.3f, 0.9f, 0.3f, 0.9f};
    top_k_indices(scores.data(), 6, 3, ids.data());
    CHECK(ids == std::vector<int32_t>{1, 3, 5});
    ids.resize(4);
    top_k_indices(scores.data(), 6, 4, ids.data());
    CHECK(ids == std::vector<int32_t>{1, 3, 5, 2});
}

TEST_CASE("moe: routing weights are the softmax probabilities, renormalised or scaled") {
    const std::vector<float> logits = {1.0f, 3.0f, 2.0f, -1.0f};
    std::vector<float> probs(4), weights(2);
    std::vector<int32_t> ids(2);
    double total = 0;
    for (float l : logits) total += std::exp(double(l));
    const double p1 = std::exp(3.0) / total, p2 = std::exp(2.0) / total;

    route_token({4, 2, false, 2.5f}, logits.data(), probs.data(), ids.data(), weights.data());
    CHECK(ids == std::vector<int32_t>{1, 2});
    CHECK(weights[0] == doctest::Approx(2.5 * p1));
    CHECK(weights[1] == doctest::Approx(2.5 * p2));

    route_token({4, 2, true, 2.5f}, logits.data(), probs.data(), ids.data(), weights.data());
    CHECK(weights[0] == doctest::Approx(p1 / (p1 + p2)));
    CHECK(weights[1] == doctest::Approx(p2 / (p1 + p2)));

    // HF renormalises only when top_k > 1; a single expert keeps its (scaled) probability.
    route_token({4, 1, true, 1.0f}, logits.data(), probs.data(), ids.data(), weights.data());
    CHECK(ids[0] == 1);
    CHECK(weights[0] == doctest::Approx(p1));
}
