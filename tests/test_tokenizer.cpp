// Tests of the llama2.c tokenizer loader, the vocabulary metadata keys and SentencePiece BPE encode/decode.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "kiln/formats/error.hpp"
#include "kiln/formats/llama2c_tokenizer.hpp"
#include "kiln/formats/vocabulary.hpp"
#include "kiln/runtime/tokenizer.hpp"
#include "test_support.hpp"

namespace {

using kiln::test::models_dir;

std::filesystem::path llama2c_dir() { return models_dir() / "llama2c"; }

const kiln::vocabulary& llama2_vocab() {
    static const kiln::vocabulary vocab = kiln::load_llama2c_tokenizer(llama2c_dir() / "tokenizer.bin", 32000);
    return vocab;
}
const kiln::vocabulary& tok512_vocab() {
    static const kiln::vocabulary vocab = kiln::load_llama2c_tokenizer(llama2c_dir() / "tok512.bin", 512);
    return vocab;
}

std::string read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Appends one UTF-8 encoded code point.
void append_utf8(std::string& out, uint32_t code_point) {
    if (code_point < 0x80) {
        out += static_cast<char>(code_point);
    } else if (code_point < 0x800) {
        out += static_cast<char>(0xC0 | (code_point >> 6));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
        out += static_cast<char>(0xE0 | (code_point >> 12));
        out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (code_point >> 18));
        out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    }
}

// Random valid UTF-8 mixing ASCII words, spaces, newlines, 2/3/4-byte characters and emoji. U+2581
// is left out: SentencePiece itself reads it as a space, so it cannot survive a round trip.
std::vector<std::string> random_utf8_strings(size_t count, uint32_t seed) {
    std::mt19937 rng(seed);
    auto pick = [&](uint32_t low, uint32_t high) { return std::uniform_int_distribution<uint32_t>(low, high)(rng); };
    std::vector<std::string> strings;
    for (size_t n = 0; n < count; ++n) {
        std::string text;
        const uint32_t length = pick(0, 40);
        for (uint32_t i = 0; i < length; ++i) {
            uint32_t code_point = 0;
            switch (pick(0, 9)) {
            case 0: code_point = ' '; break;
            case 1: code_point = pick(0, 3) == 0 ? '\n' : ' '; break;
            case 2: code_point = pick(0x80, 0x7FF); break;
            case 3: code_point = pick(0x800, 0xD7FF); break;
            case 4: code_point = pick(0xE000, 0xFFFD); break;
            case 5: code_point = pick(0x10000, 0x10FFFF); break;
            case 6: code_point = pick(0x1F600, 0x1F64F); break;  // emoji
            default: code_point = pick(0x21, 0x7E); break;
            }
            if (code_point == 0x2581) code_point = 'x';
            append_utf8(text, code_point);
        }
        strings.push_back(std::move(text));
    }
    return strings;
}

// The merge loop as llama2.c's run.c writes it: rescan every adjacent pair after each merge and take
// the best score, the leftmost on ties. Quadratic, so only for checking the fast encoder.
std::vector<int32_t> quadratic_spm_encode(const kiln::vocabulary& vocab, const std::string& text) {
    std::map<std::string, int32_t> ids_by_piece;
    for (size_t id = 0; id < vocab.size(); ++id)
        if (vocab.types[id] == static_cast<int32_t>(kiln::token_kind::normal)) ids_by_piece.emplace(vocab.tokens[id], id);
    std::vector<int32_t> ids;
    if (text.empty()) return ids;
    const std::string with_prefix = " " + text;
    for (size_t start = 0; start < with_prefix.size();) {
        size_t length = 1;
        while (length < 4 && start + length < with_prefix.size() &&
               (static_cast<unsigned char>(with_prefix[start + length]) & 0xC0) == 0x80)
            ++length;
        std::string character = with_prefix.substr(start, length);
        if (character == " ") character = "\xE2\x96\x81";
        if (auto found = ids_by_piece.find(character); found != ids_by_piece.end())
            ids.push_back(found->second);
        else
            for (char byte : character) ids.push_back(3 + static_cast<unsigned char>(byte));
        start += length;
    }
    while (true) {
        float best_score = -1e10f;
        int32_t best_id = -1;
        size_t best_index = 0;
        for (size_t i = 0; i + 1 < ids.size(); ++i) {
            auto found = ids_by_piece.find(vocab.tokens[ids[i]] + vocab.tokens[ids[i + 1]]);
            if (found != ids_by_piece.end() && vocab.scores[found->second] > best_score) {
                best_score = vocab.scores[found->second];
                best_id = found->second;
                best_index = i;
            }
        }
        if (best_id < 0) break;
        ids[best_index] = best_id;
        ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best_index) + 1);
    }
    return ids;
}

}  // namespace

TEST_CASE("llama2c tokenizer stores pieces the SentencePiece way") {
    const kiln::vocabulary& vocab = llama2_vocab();
    REQUIRE(vocab.size() == 32000);
    CHECK(vocab.model == "llama-spm");
    CHECK(vocab.tokens[0] == "<unk>");
    CHECK(vocab.types[0] == static_cast<int32_t>(kiln::token_kind::unknown));
    CHECK(vocab.tokens[1] == "<s>");
    CHECK(vocab.types[1] == static_cast<int32_t>(kiln::token_kind::control));
    CHECK(vocab.tokens[2] == "</s>");
    CHECK(vocab.tokens[3] == "<0x00>");
    CHECK(vocab.types[3 + 0x41] == static_cast<int32_t>(kiln::token_kind::byte));
    CHECK(vocab.tokens[29871] == "\xE2\x96\x81");  // the lone space piece
    CHECK(vocab.types[29871] == static_cast<int32_t>(kiln::token_kind::normal));
    CHECK(vocab.bos_id == 1);
    CHECK(vocab.eos_id == 2);
    CHECK(vocab.unk_id == 0);
    CHECK(vocab.scores[260] == -1.0f);
}

TEST_CASE("llama2c tokenizer.bin encodes the llama2.c test vectors") {
    const kiln::tokenizer tok(llama2_vocab());
    const nlohmann::json cases = kiln::test::read_json(llama2c_dir() / "tokenizer.tests.json")["cases"];
    REQUIRE(cases.size() == 5);
    for (const auto& test_case : cases) {
        const std::string text = test_case["text"];
        const std::vector<int32_t> expected = test_case["ids"];
        CAPTURE(text);
        CHECK(tok.encode(text, true) == expected);
        CHECK(tok.decode(expected) == text);
    }
}

TEST_CASE("tok512 reproduces the stories260K reference tokens and text") {
    const kiln::tokenizer tok(tok512_vocab());
    const nlohmann::json reference = kiln::test::read_json(llama2c_dir() / "stories260K.reference.json");
    REQUIRE(reference["cases"].size() == 2);
    for (const auto& test_case : reference["cases"]) {
        const std::string prompt = test_case["prompt"];
        const std::string text = test_case["text"];
        const std::vector<int32_t> tokens = test_case["tokens"];
        CAPTURE(prompt);
        const std::vector<int32_t> prompt_ids = tok.encode(prompt, true);
        REQUIRE(prompt_ids.size() <= tokens.size());
        CHECK(std::equal(prompt_ids.begin(), prompt_ids.end(), tokens.begin()));
        CHECK(tok.decode(std::span<const int32_t>(tokens).subspan(1)) == text);

        std::string streamed;
        for (size_t i = 1; i < tokens.size(); ++i) streamed += tok.piece_text(tokens[i - 1], tokens[i]);
        CHECK(streamed == text);
    }
    // The prompt case must really contain prompt tokens beyond BOS, or the prefix check is empty.
    CHECK(tok.encode("Tom had a red ball", true).size() > 2);
}

TEST_CASE("piece_text drops the dummy space only right after BOS") {
    const kiln::tokenizer tok(llama2_vocab());
    const std::vector<int32_t> ids = tok.encode("Hello world", true);
    REQUIRE(ids.size() >= 3);
    CHECK(tok.piece_text(ids[0], ids[1]) == "Hello");
    CHECK(tok.piece_text(ids[1], ids[2]) == " world");
    CHECK(tok.piece_text(ids[2], tok.eos_id()).empty());
    CHECK(tok.piece_text(ids[2], 3 + 0x0A) == "\n");
}

TEST_CASE("spm decode of encode is the identity") {
    const kiln::tokenizer llama2(llama2_vocab());
    const kiln::tokenizer tiny(tok512_vocab());
    std::vector<std::string> samples = {"", " ", "  ", "\n", "a", " leading space", "trailing space ",
                                        "tabs\tand\r\nCRLF", "héllo wörld", "日本語のテキスト", "emoji 😀🎉 mixed",
                                        "\xE2\x80\x8A hair space", "multiple   spaces   here"};
    const auto tests_json = kiln::test::read_json(llama2c_dir() / "tokenizer.tests.json");  // must outlive the loop
    for (const auto& test_case : tests_json["cases"]) samples.push_back(test_case["text"]);
    const std::vector<std::string> random = random_utf8_strings(300, 20240601);
    samples.insert(samples.end(), random.begin(), random.end());
    for (const std::string& text : samples) {
        CAPTURE(text);
        CHECK(llama2.decode(llama2.encode(text, true)) == text);
        CHECK(tiny.decode(tiny.encode(text, false)) == text);
    }
}

TEST_CASE("spm encode falls back to bytes for characters outside the vocabulary") {
    const kiln::tokenizer tiny(tok512_vocab());
    // tok512 has no piece for 'ü' (C3 BC), so it must come out as two byte tokens (3 + byte), but it
    // has one for '€'.
    const std::vector<int32_t> fallback = {410 /* ▁ */, 3 + 0xC3, 3 + 0xBC};
    CHECK(tiny.encode("\xC3\xBC", false) == fallback);
    const std::vector<int32_t> whole = {410, 503};
    CHECK(tiny.encode("\xE2\x82\xAC", false) == whole);
}

TEST_CASE("spm encode equals the quadratic run.c merge loop") {
    const kiln::tokenizer llama2(llama2_vocab());
    const kiln::tokenizer tiny(tok512_vocab());
    std::vector<std::string> samples = random_utf8_strings(100, 77);
    // Real prose, one story at a time, so that the quadratic loop stays affordable.
    const std::string corpus = read_bytes(models_dir() / "text" / "stories260K-samples.txt");
    for (size_t start = 0, story = 0; start < corpus.size() && story < 8; ++story) {
        size_t end = corpus.find("\n\n", start);
        if (end == std::string::npos) end = corpus.size();
        samples.push_back(corpus.substr(start, end - start));
        start = end + 2;
    }
    for (const std::string& text : samples) {
        CAPTURE(text);
        CHECK(llama2.encode(text, false) == quadratic_spm_encode(llama2_vocab(), text));
        CHECK(tiny.encode(text, false) == quadratic_spm_encode(tok512_vocab(), text));
    }
}

TEST_CASE("spm encode of a long text is fast and exact") {
    // A 76 KB text merged by the quadratic loop would take seconds; the heap makes it instant.
    const kiln::tokenizer tiny(tok512_vocab());
    const std::string text = read_bytes(models_dir() / "text" / "stories260K-samples.txt");
    REQUIRE(text.size() > 70000);
    const std::vector<int32_t> ids = tiny.encode(text, true);
    CHECK(ids.size() > 30000);
    CHECK(ids.size() < 45000);
    CHECK(tiny.decode(ids) == text);
}

TEST_CASE("load_llama2c_tokenizer reports broken files by name") {
    kiln::test::temp_dir scratch;
    const std::string good = read_bytes(llama2c_dir() / "tok512.bin");
    REQUIRE(good.size() == 6227);
    auto expect_file_error = [&](const std::filesystem::path& path, uint64_t vocab_size, const std::string& needle) {
        CAPTURE(path);
        CAPTURE(needle);
        try {
            kiln::load_llama2c_tokenizer(path, vocab_size);
            FAIL("no error thrown");
        } catch (const kiln::file_error& problem) {
            const std::string message = problem.what();
            CHECK(message.find(path.string()) != std::string::npos);
            CHECK(message.find(needle) != std::string::npos);
            CHECK(problem.path() == path);
        }
    };
    expect_file_error(scratch / "missing.bin", 512, "does not exist");

    write_bytes(scratch / "empty.bin", "");
    expect_file_error(scratch / "empty.bin", 512, "truncated");

    write_bytes(scratch / "cut.bin", good.substr(0, good.size() - 3));
    expect_file_error(scratch / "cut.bin", 512, "cut short");

    std::string negative = good;
    const int32_t bad_length = -5;
    std::memcpy(negative.data() + 4 + 4, &bad_length, 4);  // length field of token 0
    write_bytes(scratch / "negative.bin", negative);
    expect_file_error(scratch / "negative.bin", 512, "invalid length");

    write_bytes(scratch / "good.bin", good);
    expect_file_error(scratch / "good.bin", 513, "has 512 tokens");
    expect_file_error(scratch / "good.bin", 511, "more than 511 tokens");
    CHECK(kiln::load_llama2c_tokenizer(scratch / "good.bin", 512).size() == 512);
}

TEST_CASE("vocabulary round-trips through metadata") {
    kiln::vocabulary vocab = tok512_vocab();
    kiln::metadata meta;
    vocab.to_metadata(meta);
    CHECK(meta.get_string("tokenizer.model") == "llama-spm");
    CHECK_FALSE(meta.has("tokenizer.merges"));
    CHECK_FALSE(meta.has("tokenizer.pre"));
    const kiln::vocabulary back = kiln::vocabulary::from_metadata(meta);
    CHECK(back.tokens == vocab.tokens);
    CHECK(back.scores == vocab.scores);
    CHECK(back.types == vocab.types);
    CHECK(back.bos_id == vocab.bos_id);
    CHECK(back.eos_id == vocab.eos_id);
    CHECK(back.unk_id == vocab.unk_id);
    CHECK(back.add_bos == vocab.add_bos);
    CHECK(back.add_space_prefix == vocab.add_space_prefix);

    kiln::vocabulary bpe;
    bpe.model = "byte-bpe";
    bpe.pre = "llama3";
    bpe.tokens = {"a", "b", "ab"};
    bpe.scores = {0, 0, 0};
    bpe.types = {1, 1, 1};
    bpe.merges = {"a b"};
    bpe.bos_id = -1;
    bpe.eos_id = 2;
    bpe.unk_id = -1;
    bpe.add_bos = false;
    bpe.add_space_prefix = false;
    kiln::metadata bpe_meta;
    bpe.to_metadata(bpe_meta);
    const kiln::vocabulary bpe_back = kiln::vocabulary::from_metadata(bpe_meta);
    CHECK(bpe_back.model == "byte-bpe");
    CHECK(bpe_back.pre == "llama3");
    CHECK(bpe_back.merges == bpe.merges);
    CHECK(bpe_back.bos_id == -1);
    CHECK_FALSE(bpe_back.add_bos);
}

TEST_CASE("vocabulary validate rejects inconsistent vocabularies") {
    kiln::vocabulary vocab;
    vocab.tokens = {"<unk>", "<s>", "</s>", "a"};
    vocab.scores = {0, 0, 0, -1};
    vocab.types = {2, 3, 3, 1};
    CHECK_NOTHROW(vocab.validate());

    kiln::vocabulary short_scores = vocab;
    short_scores.scores.pop_back();
    CHECK_THROWS_AS(short_scores.validate(), kiln::error);
    kiln::vocabulary long_types = vocab;
    long_types.types.push_back(1);
    CHECK_THROWS_AS(long_types.validate(), kiln::error);
    kiln::vocabulary bad_bos = vocab;
    bad_bos.bos_id = 4;
    CHECK_THROWS_AS(bad_bos.validate(), kiln::error);
    kiln::vocabulary bad_eos = vocab;
    bad_eos.eos_id = -2;
    CHECK_THROWS_AS(bad_eos.validate(), kiln::error);
    kiln::vocabulary bad_unk = vocab;
    bad_unk.unk_id = 100;
    CHECK_THROWS_AS(bad_unk.validate(), kiln::error);
    kiln::vocabulary bad_type = vocab;
    bad_type.types[3] = 9;
    CHECK_THROWS_AS(bad_type.validate(), kiln::error);
    kiln::vocabulary no_special = vocab;
    no_special.bos_id = no_special.eos_id = no_special.unk_id = -1;
    CHECK_NOTHROW(no_special.validate());
    // from_metadata validates too.
    kiln::metadata meta;
    vocab.to_metadata(meta);
    meta.set("tokenizer.scores", std::vector<float>{0, 0});
    CHECK_THROWS_AS(kiln::vocabulary::from_metadata(meta), kiln::error);
}

TEST_CASE("vocabulary pad_to: placeholders for padded embedding rows never encode and print nothing") {
    kiln::vocabulary vocab = tok512_vocab();
    vocab.pad_to(520);
    REQUIRE(vocab.size() == 520);
    CHECK(vocab.tokens[512] == "[PAD512]");
    CHECK(vocab.types[519] == int32_t(kiln::token_kind::unused));
    vocab.pad_to(500);  // never shrinks
    CHECK(vocab.size() == 520);
    const kiln::tokenizer tok(vocab);
    for (int32_t id : tok.encode("[PAD512] [PAD519]", true, true)) CHECK(id < 512);
    CHECK(tok.decode(std::vector<int32_t>{512, 519}).empty());
    // The same text encodes as without the padding.
    CHECK(tok.encode("Once upon a time", true) == kiln::tokenizer(tok512_vocab()).encode("Once upon a time", true));
    // Also the llama2.c reader without a size reads every record.
    CHECK(kiln::load_llama2c_tokenizer(llama2c_dir() / "tok512.bin").tokens == tok512_vocab().tokens);
}
