// `kiln tokenize` on real tokenizer files of every kind: the ids of llama.cpp's and llama2.c's test
// vectors, the listing format, and one-line errors.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "model_fixtures.hpp"
#include "vocab_vectors.hpp"

using namespace kiln;
using test::quote;

namespace {

// Any text as one single-quoted shell word ('it'\''s').
std::string shell_word(const std::string& text) {
    std::string word = "'";
    for (char c : text) {
        if (c == '\'') word += "'\\''";
        else word += c;
    }
    return word + "'";
}

std::string ids_line(const std::vector<int32_t>& ids) {
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + std::to_string(ids[i]);
    return line + "]\n";
}

}  // namespace

TEST_CASE("cli tokenize: GGUF vocabularies give llama.cpp's test-vector ids") {
    test::temp_dir dir;
    for (const char* name : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-deepseek-llm.gguf"}) {
        const auto cases = test::read_vocab_tests(name);
        REQUIRE(cases.size() == 46);
        // Every fourth string keeps the test short while covering spaces, newlines, digits and
        // non-Latin scripts.
        for (size_t i = 0; i < cases.size(); i += 4) {
            CAPTURE(name);
            CAPTURE(cases[i].text);
            auto r = test::run_kiln("tokenize -m " + quote(test::models_dir() / "vocab" / name) + " --ids --no-bos -p " +
                                        shell_word(cases[i].text),
                                    dir);
            REQUIRE_MESSAGE(r.exit_code == 0, r.err);
            CHECK(r.out == ids_line(cases[i].ids));
        }
    }
}

TEST_CASE("cli tokenize: llama2.c tokenizer.bin gives llama2.c's test-vector ids, with BOS by default") {
    test::temp_dir dir;
    const auto tests = test::read_json(test::models_dir() / "llama2c" / "tokenizer.tests.json");
    for (const auto& c : tests["cases"]) {
        const std::string text = c["text"];
        CAPTURE(text);
        auto r = test::run_kiln(
            "tokenize -m " + quote(test::models_dir() / "llama2c" / "tokenizer.bin") + " --ids -p " + shell_word(text), dir);
        REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        CHECK(r.out == ids_line(c["ids"].get<std::vector<int32_t>>()));
    }
}

TEST_CASE("cli tokenize: one id per line with its text; every file kind agrees on the same vocabulary") {
    test::temp_dir dir;
    auto r = test::run_kiln("tokenize -m " + quote(test::models_dir() / "llama2c" / "tokenizer.bin") + " -p 'Hello\n'", dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.out == "     1 '<s>'\n 15043 ' Hello'\n    13 '\\n'\n");

    // tok512 as llama2.c tokenizer.bin, SentencePiece tokenizer.model, HF folder, GGUF and .kiln.
    const std::string text = "Once upon a time, Lily's cat ran.";
    const std::vector<std::filesystem::path> files = {
        test::tok512_bin(), test::models_dir() / "llama2c" / "tok512.model", test::models_dir() / "hf" / "stories260K",
        test::models_dir() / "gguf" / "stories260K.gguf", test::converted_stories()};
    std::string first;
    for (const auto& file : files) {
        CAPTURE(file);
        auto t = test::run_kiln("tokenize --ids -m " + quote(file) + " -p " + shell_word(text), dir);
        REQUIRE_MESSAGE(t.exit_code == 0, t.err);
        if (first.empty()) first = t.out;
        CHECK(t.out == first);
    }
    CHECK(first.rfind("[1, ", 0) == 0);

    // Byte-level BPE tokenizer.json: Llama 3 adds its BOS; --no-bos drops it.
    const auto llama3 = test::models_dir() / "hf-tokenizers" / "llama3" / "tokenizer.json";
    CHECK(test::run_kiln("tokenize --ids -m " + quote(llama3) + " -p 'Hello world'", dir).out == "[128000, 9906, 1917]\n");
    CHECK(test::run_kiln("tokenize --ids --no-bos -m " + quote(llama3) + " -p 'Hello world'", dir).out ==
          "[9906, 1917]\n");
    // Pieces that are not whole UTF-8 characters are escaped; special tokens show their name.
    auto q = test::run_kiln("tokenize --no-bos -m " + quote(test::models_dir() / "hf-tokenizers" / "qwen3" / "tokenizer.json") +
                                " -p '<|im_end|>🦙'",
                            dir);
    REQUIRE_MESSAGE(q.exit_code == 0, q.err);
    CHECK(q.out == "151645 '<|im_end|>'\n149955 '🦙'\n");
    auto g = test::run_kiln("tokenize -m " + quote(test::models_dir() / "vocab" / "ggml-vocab-gpt-2.gguf") + " -p '🦙'", dir);
    CHECK(g.out == "  8582 '\\xF0\\x9F'\n    99 '\\xA6'\n   247 '\\x99'\n");
}

TEST_CASE("cli tokenize: --parse-special reads <s> as BOS in SentencePiece vocabularies") {
    test::temp_dir dir;
    const auto spm = quote(test::models_dir() / "vocab" / "ggml-vocab-llama-spm.gguf");
    CHECK(test::run_kiln("tokenize --ids --no-bos --parse-special -m " + spm + " -p '<s>[INST] Hi'", dir).out ==
          "[1, 518, 25580, 29962, 6324]\n");
    const auto literal = test::run_kiln("tokenize --ids --no-bos -m " + spm + " -p '<s>'", dir).out;
    CHECK(literal != "[1]\n");
}

TEST_CASE("cli tokenize: bad input gives one error line") {
    test::temp_dir dir;
    auto expect_one_line_error = [&](const std::string& args, const std::string& words) {
        test::check_one_line_error(test::run_kiln(args, dir), words, args);
    };
    expect_one_line_error("tokenize -m " + quote(dir / "absent.json") + " -p hi", "absent.json: no such file");
    expect_one_line_error("tokenize -m " + quote(test::stories_bin()) + " -p hi", "not a tokenizer kiln knows");
    std::ofstream(dir / "broken.json") << "{\"model\": ";
    expect_one_line_error("tokenize -m " + quote(dir / "broken.json") + " -p hi", "broken.json: not valid JSON");
    std::ofstream(dir / "empty.bin");
    expect_one_line_error("tokenize -m " + quote(dir / "empty.bin") + " -p hi", "empty.bin: empty file");
    // CLI11 reports a missing option itself (with a pointer to --help).
    auto missing = test::run_kiln("tokenize -m " + quote(test::tok512_bin()), dir);
    CHECK(missing.exit_code != 0);
    CHECK(missing.err.find("--prompt is required") != std::string::npos);
}
