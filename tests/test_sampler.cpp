// Tests of the sampler: greedy, top-k, top-p, seeding, and agreement with the softmax distribution.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/runtime/sampler.hpp"

namespace {

std::vector<int32_t> draw(kiln::sampler& sampler, const std::vector<float>& logits, size_t count) {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < count; ++i) ids.push_back(sampler.sample(logits));
    return ids;
}

// Logits with a clear order but no single dominant token, over a vocabulary of `size`.
std::vector<float> spread_logits(size_t size) {
    std::vector<float> logits(size);
    for (size_t i = 0; i < size; ++i) logits[i] = std::sin(static_cast<float>(i) * 1.7f) * 2.0f;
    return logits;
}

}  // namespace

TEST_CASE("greedy sampling is argmax with the first index on ties") {
    kiln::sampler greedy({.temperature = 0.0f, .top_k = 40, .top_p = 0.95f, .seed = 1}, 6);
    CHECK(greedy.sample(std::vector<float>{0.1f, 3.0f, -2.0f, 2.9f, 0.0f, 1.0f}) == 1);
    CHECK(greedy.sample(std::vector<float>{0.5f, 4.0f, 1.0f, 4.0f, 4.0f, -1.0f}) == 1);
    CHECK(greedy.sample(std::vector<float>{-5.0f, -4.0f, -3.0f, -2.0f, -1.0f, 7.0f}) == 5);
    CHECK(kiln::argmax(std::vector<float>{2.0f, 2.0f}) == 0);
}

TEST_CASE("top_k 1 equals greedy at any temperature") {
    const std::vector<float> logits = spread_logits(1000);
    const int32_t best = kiln::argmax(logits);
    for (float temperature : {0.1f, 1.0f, 5.0f, 100.0f}) {
        kiln::sampler top1({.temperature = temperature, .top_k = 1, .top_p = 1.0f, .seed = 7}, logits.size());
        for (int i = 0; i < 20; ++i) CHECK(top1.sample(logits) == best);
    }
}

TEST_CASE("the same seed gives the same tokens and other seeds differ") {
    const std::vector<float> logits = spread_logits(500);
    const kiln::sampler_params params{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 42};
    kiln::sampler first(params, logits.size()), second(params, logits.size());
    const std::vector<int32_t> sequence = draw(first, logits, 200);
    CHECK(draw(second, logits, 200) == sequence);
    kiln::sampler_params other_seed = params;
    other_seed.seed = 43;
    kiln::sampler third(other_seed, logits.size());
    CHECK(draw(third, logits, 200) != sequence);
    // The draws are not all one token: the sampler really samples.
    CHECK(std::count(sequence.begin(), sequence.end(), sequence[0]) < 100);
}

TEST_CASE("temperature 1 sampling matches the softmax distribution") {
    const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f};
    double total = 0.0;
    std::vector<double> expected(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) total += expected[i] = std::exp(static_cast<double>(logits[i]));
    for (double& p : expected) p /= total;

    kiln::sampler sampler({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 2024}, logits.size());
    const size_t draws = 200000;
    std::vector<size_t> counts(logits.size());
    for (size_t i = 0; i < draws; ++i) ++counts[sampler.sample(logits)];
    for (size_t i = 0; i < logits.size(); ++i) {
        CAPTURE(i);
        // The standard deviation of each frequency is at most 0.0012; 0.006 is five of them.
        CHECK(std::abs(static_cast<double>(counts[i]) / draws - expected[i]) < 0.006);
    }
}

TEST_CASE("top_k keeps only the k most likely tokens") {
    const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f};
    kiln::sampler sampler({.temperature = 1.5f, .top_k = 2, .top_p = 1.0f, .seed = 5}, logits.size());
    std::vector<size_t> counts(logits.size());
    for (int i = 0; i < 5000; ++i) ++counts[sampler.sample(logits)];
    CHECK(counts[4] > 0);
    CHECK(counts[1] > 0);
    CHECK(counts[4] + counts[1] == 5000);
}

TEST_CASE("small top_p keeps only the top token") {
    const std::vector<float> logits = spread_logits(300);
    const int32_t best = kiln::argmax(logits);
    kiln::sampler sampler({.temperature = 1.0f, .top_k = 0, .top_p = 0.01f, .seed = 9}, logits.size());
    for (int i = 0; i < 100; ++i) CHECK(sampler.sample(logits) == best);
    // A top_p that needs the first two tokens yields both of them and nothing else.
    const std::vector<float> two_way = {0.0f, 5.0f, 5.0f, -3.0f};
    kiln::sampler pair_sampler({.temperature = 1.0f, .top_k = 0, .top_p = 0.9f, .seed = 9}, two_way.size());
    std::vector<size_t> counts(two_way.size());
    for (int i = 0; i < 2000; ++i) ++counts[pair_sampler.sample(two_way)];
    CHECK(counts[1] > 800);
    CHECK(counts[2] > 800);
    CHECK(counts[0] + counts[3] == 0);
}

TEST_CASE("sampler rejects logits of the wrong size") {
    kiln::sampler sampler({}, 4);
    CHECK_THROWS(sampler.sample(std::vector<float>{1.0f, 2.0f}));
}

TEST_CASE("top_p alone draws the same tokens as top_p after a full sort") {
    // top_k = 0 takes the pruned path (tokens too unlikely for the nucleus are dropped before the
    // sort); top_k = n - 1 sorts all but the least likely token, which is never in a 0.9 nucleus here.
    const std::vector<float> logits = spread_logits(8000);
    kiln::sampler pruned({.temperature = 0.7f, .top_k = 0, .top_p = 0.9f, .seed = 11}, logits.size());
    kiln::sampler sorted({.temperature = 0.7f, .top_k = 7999, .top_p = 0.9f, .seed = 11}, logits.size());
    const std::vector<int32_t> pruned_draws = draw(pruned, logits, 200);
    CHECK(pruned_draws == draw(sorted, logits, 200));
    // The nucleus holds many tokens, so the comparison is not trivially about one token.
    std::vector<int32_t> distinct = pruned_draws;
    std::sort(distinct.begin(), distinct.end());
    CHECK(std::unique(distinct.begin(), distinct.end()) - distinct.begin() > 50);
}
