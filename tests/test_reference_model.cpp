// The reference forward pass reproduces llama2.c's run.c on the real stories260K model: every
// greedy token of every reference case, and the logits at the recorded positions.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "kiln/formats/error.hpp"
#include "kiln/runtime/generate.hpp"
#include "kiln/runtime/reference_llama.hpp"
#include "kiln/runtime/tokenizer.hpp"
#include "model_fixtures.hpp"

using namespace kiln;

TEST_CASE("reference llama: stories260K logits match run.c within 1e-4") {
    auto m = model::load(test::converted_stories());
    auto reference = test::stories_reference();
    const auto& expected_tokens = reference["cases"][0]["tokens"];
    const auto& expected_logits = reference["logits"]["positions"];  // {"0": [512 floats], ...}
    REQUIRE(expected_logits.size() == 8);
    reference_llama lm(m);
    double worst = 0;
    for (size_t pos = 0; pos < expected_logits.size(); ++pos) {
        auto logits = lm.forward(expected_tokens[pos].get<int32_t>(), int32_t(pos));
        const auto& row = expected_logits[std::to_string(pos)];
        REQUIRE(row.size() == logits.size());
        for (size_t i = 0; i < logits.size(); ++i) worst = std::max(worst, std::abs(double(logits[i]) - row[i].get<double>()));
    }
    MESSAGE("max |logit - run.c logit| = " << worst);
    CHECK(worst < 1e-4);
}

TEST_CASE("reference llama: greedy generation reproduces every run.c token") {
    auto m = model::load(test::converted_stories());
    tokenizer tok(m->vocab());
    const auto reference = test::stories_reference();  // a range-for over a temporary's member would dangle
    for (const auto& c : reference["cases"]) {
        const auto expected = c["tokens"].get<std::vector<int32_t>>();
        const int32_t steps = c["steps"].get<int32_t>();
        generation_request request;
        request.prompt = tok.encode(c["prompt"].get<std::string>(), true);
        REQUIRE(request.prompt.size() <= expected.size());
        CHECK(std::equal(request.prompt.begin(), request.prompt.end(), expected.begin()));
        request.max_new_tokens = steps + 1 - int32_t(request.prompt.size());
        reference_llama lm(m);
        sampler greedy(sampler_params{.temperature = 0}, m->config().vocab_size);
        std::vector<int32_t> produced = request.prompt;
        generate(lm, request, greedy, [&](int32_t id) { produced.push_back(id); });
        CHECK_MESSAGE(produced == expected, "case " << c["name"].get<std::string>());
        CHECK(tok.decode(std::span(produced).subspan(1)) == c["text"].get<std::string>());
    }
}

TEST_CASE("reference llama: a prompt longer than the context is refused before any work") {
    auto m = model::load(test::converted_stories());
    reference_llama lm(m, 16);
    CHECK(lm.context_length() == 16);
    sampler greedy(sampler_params{.temperature = 0}, m->config().vocab_size);
    generation_request request;
    request.prompt.assign(17, 1);
    request.max_new_tokens = 0;
    CHECK_THROWS_WITH_AS(generate(lm, request, greedy, [](int32_t) {}),
                         doctest::Contains("longer than the context of 16"), error);
    request.prompt.assign(10, 1);
    request.max_new_tokens = 7;
    CHECK_THROWS_WITH_AS(generate(lm, request, greedy, [](int32_t) {}), doctest::Contains("exceeds the context"), error);
    CHECK_THROWS_AS(lm.forward(600, 0), error);  // token id outside the vocabulary
}
