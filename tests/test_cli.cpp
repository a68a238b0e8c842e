// The kiln executable end to end: convert, run, inspect, and one clear error line for bad input.
#include <doctest/doctest.h>

#include "kiln/runtime/tokenizer.hpp"
#include "model_fixtures.hpp"

using namespace kiln;
using test::quote;

TEST_CASE("cli: convert then greedy run prints run.c's story") {
    test::temp_dir dir;
    auto out = dir / "stories.kiln";
    auto r = test::run_kiln("convert " + quote(test::stories_bin()) + " --tokenizer " + quote(test::tok512_bin()) +
                                " -o " + quote(out),
                            dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    const auto reference = test::stories_reference();
    const auto& c = reference["cases"][1];  // prompt_tom_64
    const std::string prompt = c["prompt"];
    // run.c's steps count positions from BOS: prompt tokens + generated = steps + 1.
    const auto prompt_tokens = tokenizer(model::load(out)->vocab()).encode(prompt, true).size();
    auto run = test::run_kiln("run -m " + quote(out) + " -p '" + prompt + "' --temp 0 -n " +
                                  std::to_string(c["steps"].get<int>() + 1 - int(prompt_tokens)),
                              dir);
    REQUIRE_MESSAGE(run.exit_code == 0, run.err);
    CHECK(run.out == c["text"].get<std::string>() + "\n");
}

TEST_CASE("cli: inspect --verify lists tensors and checks them") {
    test::temp_dir dir;
    auto r = test::run_kiln("inspect --verify " + quote(test::converted_stories()), dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.out.find("blk.4.ffn_down") != std::string::npos);
    CHECK(r.out.find("all 47 tensor checksums verified") != std::string::npos);
}

TEST_CASE("cli: bad input gives one error line and a non-zero exit") {
    test::temp_dir dir;
    auto expect_one_line_error = [&](const std::string& args, const std::string& words) {
        test::check_one_line_error(test::run_kiln(args, dir), words, args);
    };
    expect_one_line_error("run -m " + quote(dir / "absent.kiln") + " -p hi", "absent.kiln: No such file");
    expect_one_line_error("inspect " + quote(test::stories_bin()), "wrong magic");
    expect_one_line_error("convert " + quote(test::stories_bin()) + " -o " + quote(dir / "x.kiln"), "--tokenizer");
    expect_one_line_error("convert " + quote(test::stories_bin()) + " --tokenizer " + quote(test::tok512_bin()) +
                              " --type q9 -o " + quote(dir / "x.kiln"),
                          "unknown weight type 'q9'");

    std::string long_prompt;
    for (int i = 0; i < 400; ++i) long_prompt += "the cat sat ";
    expect_one_line_error("run -m " + quote(test::converted_stories()) + " -p '" + long_prompt + "' -n 4",
                          "longer than the context of 512");
}

TEST_CASE("cli: a convert that fails leaves no output file") {
    test::temp_dir dir;
    auto out = dir / "never.kiln";
    auto big_vocab = test::models_dir() / "llama2c" / "tokenizer.bin";
    auto r = test::run_kiln("convert " + quote(test::stories_bin()) + " --tokenizer " + quote(big_vocab) + " -o " +
                                quote(out),
                            dir);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("tokenizer.bin") != std::string::npos);
    for (auto& e : std::filesystem::directory_iterator(dir.path()))
        CHECK_MESSAGE(e.path().extension() == ".txt", "left behind: " << e.path());
}

TEST_CASE("cli: --version and --help") {
    test::temp_dir dir;
    auto v = test::run_kiln("--version", dir);
    CHECK(v.exit_code == 0);
    CHECK(v.out.find("kiln 0.1.0") != std::string::npos);
    auto h = test::run_kiln("run --help", dir);
    CHECK(h.exit_code == 0);
    CHECK(h.out.find("--top-p") != std::string::npos);
}

TEST_CASE("cli: quantize of the f32 file equals converting straight to the type") {
    test::temp_dir dir;
    auto f32 = dir / "f32.kiln", direct = dir / "direct.kiln", requantized = dir / "requantized.kiln";
    const std::string source = quote(test::stories_bin()) + " --tokenizer " + quote(test::tok512_bin());
    REQUIRE(test::run_kiln("convert " + source + " -o " + quote(f32), dir).exit_code == 0);
    REQUIRE(test::run_kiln("convert " + source + " --type q4_0 -o " + quote(direct), dir).exit_code == 0);
    auto r = test::run_kiln("quantize " + quote(f32) + " " + quote(requantized) + " --type q4_0", dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    auto slurp = [](const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    CHECK(slurp(direct) == slurp(requantized));
    auto same = test::run_kiln("quantize " + quote(f32) + " " + quote(f32) + " --type q8_0", dir);
    CHECK(same.exit_code != 0);
    CHECK(same.err.find("overwrite the input") != std::string::npos);
}
