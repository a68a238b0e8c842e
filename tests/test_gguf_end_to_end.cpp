// stories260K imported from GGUF and from the Hugging Face folder, converted to .kiln, runs exactly
// like llama2.c's run.c: the recorded logits within 1e-4 and every greedy token of every case.
// This is what proves the RoPE style each importer declares matches the row order it keeps.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "kiln/formats/convert.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"
#include "kiln/formats/hf_config.hpp"
#include "kiln/formats/import.hpp"
#include "kiln/runtime/generate.hpp"
#include "kiln/runtime/reference_llama.hpp"
#include "kiln/runtime/tokenizer.hpp"
#include "model_fixtures.hpp"

using namespace kiln;
using test::quote;

namespace {

std::filesystem::path stories_gguf() { return test::models_dir() / "gguf" / "stories260K.gguf"; }
std::filesystem::path stories_hf() { return test::models_dir() / "hf" / "stories260K"; }

void check_against_run_c(const std::filesystem::path& kiln_path) {
    auto m = model::load(kiln_path);
    const auto reference = test::stories_reference();
    const auto& logits_tokens = reference["cases"][0]["tokens"];
    const auto& expected_logits = reference["logits"]["positions"];  // {"0": [512 floats], ...}
    REQUIRE(expected_logits.size() == 8);
    reference_llama lm(m);
    double worst = 0;
    for (size_t pos = 0; pos < expected_logits.size(); ++pos) {
        auto logits = lm.forward(logits_tokens[pos].get<int32_t>(), int32_t(pos));
        const auto& row = expected_logits[std::to_string(pos)];
        REQUIRE(logits.size() == row.size());
        for (size_t i = 0; i < logits.size(); ++i) worst = std::max(worst, std::abs(double(logits[i]) - row[i].get<double>()));
    }
    MESSAGE(kiln_path.filename().string() << ": max |logit - run.c logit| = " << worst);
    CHECK(worst < 1e-4);

    tokenizer tok(m->vocab());
    for (const auto& c : reference["cases"]) {
        const auto expected = c["tokens"].get<std::vector<int32_t>>();
        generation_request request;
        request.prompt = tok.encode(c["prompt"].get<std::string>(), true);
        REQUIRE(request.prompt.size() <= expected.size());
        request.max_new_tokens = c["steps"].get<int32_t>() + 1 - int32_t(request.prompt.size());
        reference_llama greedy_lm(m);
        sampler greedy(sampler_params{.temperature = 0}, m->config().vocab_size);
        std::vector<int32_t> produced = request.prompt;
        generate(greedy_lm, request, greedy, [&](int32_t id) { produced.push_back(id); });
        CHECK_MESSAGE(produced == expected, "case " << c["name"].get<std::string>());
        CHECK(tok.decode(std::span(produced).subspan(1)) == c["text"].get<std::string>());
    }
}

}  // namespace

TEST_CASE("gguf end to end: stories260K.gguf converted runs like run.c") {
    test::temp_dir dir;
    write_kiln(load_gguf(stories_gguf()), {}, dir / "from-gguf.kiln");
    check_against_run_c(dir / "from-gguf.kiln");
}

TEST_CASE("hf end to end: the stories260K folder converted runs like run.c") {
    test::temp_dir dir;
    write_kiln(load_hf_folder(stories_hf()), {}, dir / "from-hf.kiln");
    check_against_run_c(dir / "from-hf.kiln");
}

TEST_CASE("import: open_model_source recognises GGUF files and HF folders by content") {
    CHECK(open_model_source(stories_gguf(), {}).meta.get_string("general.source") == "gguf (llama)");
    CHECK(open_model_source(stories_hf(), {}).meta.get_string("general.source") == "huggingface (LlamaForCausalLM)");
    test::temp_dir dir;
    CHECK_THROWS_WITH_AS(open_model_source(dir.path(), {}), doctest::Contains("without config.json"), file_error);
}

TEST_CASE("cli: convert a GGUF file and a HF folder then run greedily") {
    const auto reference = test::stories_reference();
    const auto& c = reference["cases"][1];  // prompt_tom_64
    const std::string prompt = c["prompt"];
    for (const auto& input : {stories_gguf(), stories_hf()}) {
        CAPTURE(input);
        test::temp_dir dir;
        auto out = dir / "stories.kiln";
        auto r = test::run_kiln("convert " + quote(input) + " -o " + quote(out), dir);
        REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        const auto prompt_tokens = tokenizer(model::load(out)->vocab()).encode(prompt, true).size();
        auto run = test::run_kiln("run -m " + quote(out) + " -p '" + prompt + "' --temp 0 -n " +
                                      std::to_string(c["steps"].get<int>() + 1 - int(prompt_tokens)),
                                  dir);
        REQUIRE_MESSAGE(run.exit_code == 0, run.err);
        CHECK(run.out == c["text"].get<std::string>() + "\n");
    }
}
