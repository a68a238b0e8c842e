// Tests of tokenizer.json loading and byte-level BPE / SentencePiece encoding against llama.cpp's test vectors.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"
#include "kiln/formats/hf_tokenizer.hpp"
#include "kiln/formats/llama2c_tokenizer.hpp"
#include "kiln/runtime/tokenizer.hpp"
#include "test_support.hpp"
#include "vocab_vectors.hpp"

namespace {

using kiln::test::models_dir;

using kiln::test::read_vocab_tests;
using kiln::test::vocab_test_case;

void check_against_vectors(const kiln::tokenizer& tok, const std::string& vector_name) {
    const std::vector<vocab_test_case> cases = read_vocab_tests(vector_name);
    REQUIRE(cases.size() == 46);
    for (const vocab_test_case& test_case : cases) {
        CAPTURE(test_case.text);
        CHECK(tok.encode(test_case.text, false) == test_case.ids);
        CHECK(tok.decode(test_case.ids) == test_case.text);
        CHECK(tok.decode(tok.encode(test_case.text, false)) == test_case.text);
    }
}

const kiln::vocabulary& hf_vocab(const std::string& name) {
    static std::map<std::string, kiln::vocabulary> loaded;
    auto found = loaded.find(name);
    if (found == loaded.end())
        found = loaded.emplace(name, kiln::load_hf_tokenizer(models_dir() / "hf-tokenizers" / name / "tokenizer.json"))
                    .first;
    return found->second;
}

// Hugging Face's BPE for a SentencePiece-style tokenizer.json, written plainly: "▁" for spaces and
// in front, one symbol per character (bytes for characters outside the vocabulary), then merge the
// pair with the lowest rank in the merges list, the leftmost on ties, until none applies.
std::vector<int32_t> rank_order_bpe(const std::map<std::string, int32_t>& id_of,
                                    const std::map<std::string, size_t>& rank_of_pair, const std::string& text) {
    std::vector<int32_t> ids;
    if (text.empty()) return ids;
    std::string normalized = "\xE2\x96\x81";
    for (char c : text) normalized += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
    std::vector<std::string> symbols;
    for (size_t start = 0; start < normalized.size();) {
        size_t length = 1;
        while (start + length < normalized.size() && (static_cast<unsigned char>(normalized[start + length]) & 0xC0) == 0x80)
            ++length;
        symbols.push_back(normalized.substr(start, length));
        start += length;
    }
    while (true) {
        size_t best_rank = SIZE_MAX, best_index = 0;
        for (size_t i = 0; i + 1 < symbols.size(); ++i) {
            auto found = rank_of_pair.find(symbols[i] + " " + symbols[i + 1]);
            if (found != rank_of_pair.end() && found->second < best_rank) {
                best_rank = found->second;
                best_index = i;
            }
        }
        if (best_rank == SIZE_MAX) break;
        symbols[best_index] += symbols[best_index + 1];
        symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best_index) + 1);
    }
    for (const std::string& symbol : symbols) {
        if (auto found = id_of.find(symbol); found != id_of.end()) {
            ids.push_back(found->second);
            continue;
        }
        for (char byte : symbol) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned char>(byte));
            ids.push_back(id_of.at(name));
        }
    }
    return ids;
}

}  // namespace

TEST_CASE("Llama 3 tokenizer.json matches llama.cpp's llama-bpe vectors") {
    const kiln::vocabulary& vocab = hf_vocab("llama3");
    CHECK(vocab.model == "byte-bpe");
    CHECK(vocab.pre == "llama3");
    CHECK(vocab.size() == 128256);
    CHECK(vocab.bos_id == 128000);
    CHECK(vocab.eos_id == 128001);
    CHECK(vocab.add_bos);
    const kiln::tokenizer tok(vocab);
    check_against_vectors(tok, "ggml-vocab-llama-bpe.gguf");
    CHECK(tok.encode("Hello", true).front() == 128000);
}

TEST_CASE("Qwen3 tokenizer.json matches llama.cpp's qwen2 vectors") {
    const kiln::vocabulary& vocab = hf_vocab("qwen3");
    CHECK(vocab.model == "byte-bpe");
    CHECK(vocab.pre == "qwen2");
    CHECK(vocab.bos_id == -1);
    CHECK_FALSE(vocab.add_bos);
    const kiln::tokenizer tok(vocab);
    check_against_vectors(tok, "ggml-vocab-qwen2.gguf");
}

TEST_CASE("Llama 2 tokenizer.bin matches llama.cpp's llama-spm vectors") {
    // tokenizer.bin is Meta's Llama 2 vocabulary, the one the llama-spm vectors were made with.
    const kiln::tokenizer tok(kiln::load_llama2c_tokenizer(models_dir() / "llama2c" / "tokenizer.bin", 32000));
    check_against_vectors(tok, "ggml-vocab-llama-spm.gguf");
}

TEST_CASE("SentencePiece-style tokenizer.json loads as llama-spm and merges like Hugging Face") {
    // hf-tokenizers/llama2 is a SentencePiece BPE vocabulary of 32000 tokens, but not Meta's: its ids
    // differ from tokenizer.bin, so llama.cpp's vectors do not apply. Its encodings are checked
    // against Hugging Face's BPE rule (lowest merge rank first) run directly on its merges.
    const kiln::vocabulary& vocab = hf_vocab("llama2");
    CHECK(vocab.model == "llama-spm");
    CHECK(vocab.size() == 32000);
    CHECK(vocab.bos_id == 1);
    CHECK(vocab.eos_id == 2);
    CHECK(vocab.unk_id == 0);
    CHECK(vocab.add_bos);
    CHECK(vocab.add_space_prefix);
    CHECK(vocab.tokens[3] == "<0x00>");
    CHECK(vocab.types[3] == static_cast<int32_t>(kiln::token_kind::byte));
    CHECK(vocab.types[1] == static_cast<int32_t>(kiln::token_kind::control));
    const kiln::tokenizer tok(vocab);
    const nlohmann::json merges =
        kiln::test::read_json(models_dir() / "hf-tokenizers" / "llama2" / "tokenizer.json")["model"]["merges"];
    std::map<std::string, size_t> rank_of_pair;
    for (size_t rank = 0; rank < merges.size(); ++rank) rank_of_pair.emplace(merges[rank].get<std::string>(), rank);
    std::map<std::string, int32_t> id_of;
    for (size_t id = 0; id < vocab.size(); ++id) id_of.emplace(vocab.tokens[id], static_cast<int32_t>(id));
    const std::vector<vocab_test_case> cases = read_vocab_tests("ggml-vocab-llama-spm.gguf");
    for (const vocab_test_case& test_case : cases) {
        CAPTURE(test_case.text);
        const std::vector<int32_t> ids = tok.encode(test_case.text, false);
        CHECK(ids == rank_order_bpe(id_of, rank_of_pair, test_case.text));
        CHECK(tok.decode(ids) == test_case.text);
    }
    CHECK(tok.encode("Hello world", true).front() == 1);
}

TEST_CASE("DeepSeek-V3 tokenizer.json loads and round-trips") {
    const kiln::vocabulary& vocab = hf_vocab("deepseek_v3");
    CHECK(vocab.model == "byte-bpe");
    CHECK(vocab.pre == "deepseek-v3");
    CHECK(vocab.bos_id == 0);
    CHECK(vocab.eos_id == 1);
    const kiln::tokenizer tok(vocab);
    for (const vocab_test_case& test_case : read_vocab_tests("ggml-vocab-llama-bpe.gguf")) {
        CAPTURE(test_case.text);
        CHECK(tok.decode(tok.encode(test_case.text, false)) == test_case.text);
    }
    // Digits split in threes before the merges: a long number never becomes one token.
    const std::vector<int32_t> ids = tok.encode("1234567", false);
    CHECK(ids.size() >= 3);
}

TEST_CASE("byte-bpe matches special tokens in the text before the regex") {
    const kiln::tokenizer tok(hf_vocab("qwen3"));
    const std::vector<int32_t> ids = tok.encode("<|im_start|>user\nHi<|im_end|>", false);
    REQUIRE(ids.size() >= 4);
    CHECK(ids.front() == 151644);
    CHECK(ids.back() == 151645);
    // Control tokens print nothing; the text between them survives.
    CHECK(tok.decode(ids) == "user\nHi");
    // A non-special added token (Qwen3's <think>) is matched and printed as its text.
    const std::vector<int32_t> think = tok.encode("<think>x", false);
    REQUIRE(!think.empty());
    CHECK(think.front() == 151667);
    CHECK(tok.decode(think) == "<think>x");
}

TEST_CASE("load_hf_tokenizer reports missing and malformed files") {
    kiln::test::temp_dir scratch;
    CHECK_THROWS_AS(kiln::load_hf_tokenizer(scratch / "missing.json"), kiln::file_error);
    {
        std::ofstream(scratch / "broken.json") << "{ not json";
    }
    CHECK_THROWS_AS(kiln::load_hf_tokenizer(scratch / "broken.json"), kiln::file_error);
    {
        std::ofstream(scratch / "unigram.json") << R"({"model": {"type": "Unigram", "vocab": []}})";
    }
    try {
        kiln::load_hf_tokenizer(scratch / "unigram.json");
        FAIL("no error thrown");
    } catch (const kiln::file_error& problem) {
        CHECK(std::string(problem.what()).find("Unigram") != std::string::npos);
    }
}

TEST_CASE("llama.cpp vocab-only GGUF files match their vectors") {
    // GPT-2, DeepSeek LLM and DeepSeek Coder cover the pre-tokenizers no tokenizer.json here has.
    for (const std::string name : {"gpt-2", "deepseek-llm", "deepseek-coder", "llama-spm", "phi-3"}) {
        CAPTURE(name);
        const std::string file = "ggml-vocab-" + name + ".gguf";
        const kiln::vocabulary vocab = kiln::vocabulary_from_gguf(kiln::gguf_file::open(models_dir() / "vocab" / file));
        const kiln::tokenizer tok(vocab);
        check_against_vectors(tok, file);
    }
}
