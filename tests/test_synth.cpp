// Synthetic models (kiln synth) and the benchmark command that uses them (kiln bench).
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "kiln/formats/convert.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/synthetic.hpp"
#include "kiln/runtime/fast_llama.hpp"
#include "kiln/runtime/reference_llama.hpp"
#include "kiln/runtime/tokenizer.hpp"
#include "test_support.hpp"

using namespace kiln;
using test::quote;

namespace {

std::string read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Options set field by field: designated initializers that skip fields warn under -Wextra.
synthetic_options options_for(tensor_type type, uint64_t seed = 1) {
    synthetic_options options;
    options.type = type;
    options.seed = seed;
    return options;
}

bool all_finite(std::span<const float> values) {
    return std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); });
}

}  // namespace

TEST_CASE("synth: the tiny preset in every type loads and gives finite logits") {
    test::temp_dir dir;
    const synthetic_preset& tiny = find_synthetic_preset("tiny");
    for (tensor_type type : {tensor_type::f32, tensor_type::f16, tensor_type::bf16, tensor_type::q8_0,
                             tensor_type::q4_0, tensor_type::q4_k}) {
        CAPTURE(type_name(type));
        const auto path = dir / (std::string(type_name(type)) + ".kiln");
        write_synthetic(tiny, options_for(type, 3), path);
        auto m = model::load(path);
        CHECK(m->config().n_layers == tiny.config.n_layers);
        // The same per-tensor choice as convert (dim-64 rows do not fit q4_k's 256-blocks).
        convert_options choice;
        choice.type = type;
        const tensor_view& q = *m->weights().layers[0].attn_q;
        CHECK(q.type == choose_stored_type(q.name, q.shape, choice));
        CHECK(m->weights().layers[0].ffn_down->type == type);

        thread_pool pool(1);
        fast_llama lm(m, pool);
        const std::vector<int32_t> prompt = {1, 300, 301, 4, 511};
        auto logits = lm.forward_batch(prompt, 0, false);
        REQUIRE(all_finite(logits));
        // Random weights of the right scale give spread-out logits, not a constant or a blow-up.
        const auto [lo, hi] = std::minmax_element(logits.begin(), logits.end());
        CHECK(*hi - *lo > 0.1f);
        CHECK(*hi - *lo < 100.0f);
        int32_t next = 1;
        for (int32_t pos = int32_t(prompt.size()); pos < 40; ++pos) {
            auto step = lm.forward(next, pos);
            REQUIRE(all_finite(step));
            next = int32_t(std::max_element(step.begin(), step.end()) - step.begin());
        }
    }
}

TEST_CASE("synth: fast and reference passes agree on a synthetic f32 model") {
    test::temp_dir dir;
    const auto path = dir / "tiny.kiln";
    write_synthetic(find_synthetic_preset("tiny"), options_for(tensor_type::f32, 5), path);
    auto m = model::load(path);
    thread_pool pool(1);
    fast_llama fast(m, pool);
    reference_llama reference(m);
    const std::vector<int32_t> prompt = {1, 40, 41, 42};
    auto a = fast.forward_batch(prompt, 0, false);
    std::vector<float> fast_logits(a.begin(), a.end());
    auto b = reference.forward_batch(prompt, 0, false);
    REQUIRE(b.size() == fast_logits.size());
    for (size_t i = 0; i < b.size(); ++i) CHECK(fast_logits[i] == doctest::Approx(b[i]).epsilon(1e-3).scale(1.0));
}

TEST_CASE("synth: made-up vocabularies have the preset's size and tokenize text") {
    for (const auto& preset : synthetic_presets()) {
        CAPTURE(preset.name);
        CHECK_NOTHROW(preset.config.validate());
        vocabulary v = synthetic_vocabulary(preset.config.vocab_size);
        CHECK(v.size() == preset.config.vocab_size);
        CHECK(std::set<std::string>(v.tokens.begin(), v.tokens.end()).size() == v.size());
    }
    tokenizer tok(synthetic_vocabulary(512));
    const std::string text = "hello world, 42!";
    CHECK(tok.decode(tok.encode(text, true)) == text);
    CHECK_THROWS_AS(synthetic_vocabulary(100), error);
}

TEST_CASE("synth: a 32000-token preset stores llama2.c's tokenizer when given") {
    const auto tokenizer_bin = test::models_dir() / "llama2c" / "tokenizer.bin";
    if (!std::filesystem::exists(tokenizer_bin)) return;
    test::temp_dir dir;
    const auto path = dir / "stories15m.kiln";
    synthetic_options options = options_for(tensor_type::q8_0);
    options.tokenizer = tokenizer_bin;
    write_synthetic(find_synthetic_preset("stories15m"), options, path);
    auto m = model::load(path);
    CHECK(m->vocab().size() == 32000);
    CHECK(m->vocab().tokens[1] == "<s>");
    CHECK(m->weights().output == m->weights().token_embd);  // stories15M shares its classifier
}

TEST_CASE("synth: kiln synth writes a file that passes inspect --verify") {
    test::temp_dir dir;
    const auto out = dir / "tiny.kiln";
    auto r = test::run_kiln("synth --preset tiny --type q4_0 -o " + quote(out), dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    auto verify = test::run_kiln("inspect --verify " + quote(out), dir);
    REQUIRE_MESSAGE(verify.exit_code == 0, verify.err);
    CHECK(verify.out.find("checksums verified") != std::string::npos);
    CHECK(verify.out.find("synthetic: preset tiny") != std::string::npos);
}

TEST_CASE("synth: the same seed gives the same bytes and another seed other bytes") {
    test::temp_dir dir;
    auto synth = [&](const std::string& name, int seed) {
        auto out = dir / name;
        auto r = test::run_kiln("synth --preset tiny --type q8_0 --seed " + std::to_string(seed) + " -o " + quote(out),
                                dir);
        REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        return read_bytes(out);
    };
    const std::string a = synth("a.kiln", 11), b = synth("b.kiln", 11), c = synth("c.kiln", 12);
    CHECK(a.size() > 0);
    CHECK(a == b);
    CHECK(a != c);
}

TEST_CASE("synth: an unknown preset or type is one clear error and leaves no file") {
    test::temp_dir dir;
    auto preset = test::run_kiln("synth --preset llama-9000b --type q4_0 -o " + quote(dir / "x.kiln"), dir);
    CHECK(preset.exit_code != 0);
    CHECK_MESSAGE(preset.err.find("unknown preset 'llama-9000b'") != std::string::npos, preset.err);
    CHECK_MESSAGE(preset.err.find("tinyllama-1.1b") != std::string::npos, preset.err);
    auto type = test::run_kiln("synth --preset tiny --type q3 -o " + quote(dir / "x.kiln"), dir);
    CHECK(type.exit_code != 0);
    CHECK_MESSAGE(type.err.find("unknown weight type 'q3'") != std::string::npos, type.err);
    for (auto& e : std::filesystem::directory_iterator(dir.path()))
        CHECK_MESSAGE(e.path().extension() == ".txt", "left behind: " << e.path());
}

TEST_CASE("bench: a smoke run on the tiny model prints the pp and tg rows") {
    test::temp_dir dir;
    const auto model_path = dir / "tiny.kiln";
    write_synthetic(find_synthetic_preset("tiny"), options_for(tensor_type::q4_0), model_path);
    auto r = test::run_kiln("bench -m " + quote(model_path) + " -p 16 -n 4 -r 1 -t 1,2 -d 8", dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.out.find("| model | size | params | type | threads | test | t/s |") != std::string::npos);
    CHECK(r.out.find("| tiny.kiln |") != std::string::npos);
    CHECK(r.out.find("| q4_0 | 1 | pp16 @ d8 |") != std::string::npos);
    CHECK(r.out.find("| q4_0 | 2 | tg4 @ d8 |") != std::string::npos);
    auto reference = test::run_kiln("bench -m " + quote(model_path) + " -p 8 -n 2 -r 1 --reference", dir);
    REQUIRE_MESSAGE(reference.exit_code == 0, reference.err);
    CHECK(reference.out.find("| tg2 |") != std::string::npos);
}
