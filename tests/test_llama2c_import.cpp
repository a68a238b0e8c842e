// llama2.c checkpoints: the header is read right, and impossible headers, truncated files and
// mismatched tokenizers are refused with an error naming the file.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>

#include "kiln/formats/error.hpp"
#include "kiln/formats/model_config.hpp"
#include "model_fixtures.hpp"

using namespace kiln;

namespace {

std::vector<char> stories_bytes() {
    std::ifstream in(test::stories_bin(), std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

std::string import_error(const std::filesystem::path& checkpoint, const std::filesystem::path& tokenizer) {
    try {
        load_llama2c(checkpoint, tokenizer);
    } catch (const file_error& e) {
        return e.what();
    }
    FAIL("accepted " << checkpoint);
    return {};
}

}  // namespace

TEST_CASE("llama2c import: stories260K header and tensors") {
    model_source source = load_llama2c(test::stories_bin(), test::tok512_bin());
    llama_config c = llama_config::from_metadata(source.meta);
    test::check_stories260K_shape(c);
    CHECK(c.context_length == 512);
    CHECK(source.tensors.size() == 2 + 5 * 9);  // shared classifier: no "output"
    // The first embedding value is the first float after the 28-byte header.
    auto bytes = stories_bytes();
    float first;
    std::memcpy(&first, bytes.data() + 28, 4);
    std::vector<float> embd(512 * 64);
    source.tensors[0].read_f32(embd);
    CHECK(embd[0] == first);
}

TEST_CASE("llama2c import: impossible headers are refused") {
    test::temp_dir dir;
    const auto good = stories_bytes();
    auto path = dir / "bad.bin";
    auto with_header_value = [&](int index, int32_t value) {
        auto b = good;
        std::memcpy(b.data() + 4 * index, &value, 4);
        std::ofstream(path, std::ios::binary).write(b.data(), std::streamsize(b.size()));
        return import_error(path, test::tok512_bin());
    };
    CHECK(with_header_value(0, 0).find("impossible dim 0") != std::string::npos);
    CHECK(with_header_value(1, -5).find("impossible hidden_dim") != std::string::npos);
    CHECK(with_header_value(3, 7).find("does not divide dim") != std::string::npos);
    CHECK(with_header_value(4, 3).find("does not divide n_heads") != std::string::npos);
    CHECK(with_header_value(4, 16).find("n_kv_heads") != std::string::npos);
    CHECK(with_header_value(2, 6).find("truncated") != std::string::npos);
    CHECK(with_header_value(2, 4).find("more than its header") != std::string::npos);
    CHECK(with_header_value(5, -512).find("truncated") != std::string::npos);  // a wcls that is not there

    std::ofstream(path, std::ios::binary).write(good.data(), 20);
    CHECK(import_error(path, test::tok512_bin()).find("truncated llama2.c header") != std::string::npos);
    std::ofstream(path, std::ios::binary | std::ios::trunc).flush();
    CHECK(import_error(path, test::tok512_bin()).find("empty file") != std::string::npos);
    CHECK(import_error(dir / "absent.bin", test::tok512_bin()).find("No such file") != std::string::npos);
}

TEST_CASE("llama2c import: a tokenizer of another vocabulary size is refused") {
    auto big_vocab = test::models_dir() / "llama2c" / "tokenizer.bin";  // 32000 tokens
    std::string message = import_error(test::stories_bin(), big_vocab);
    CHECK(message.find(big_vocab.string()) == 0);
}
