// The GGUF importer on real files: stories260K.gguf holds bit-for-bit the weights of
// stories260K.bin, the tiny random Llama 2 decodes its F16 matrices, and the vocab-only files
// give the vocabularies the tokenizer needs.
#include <doctest/doctest.h>

#include <algorithm>

#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"
#include "kiln/formats/model_config.hpp"
#include "kiln/formats/vocabulary.hpp"
#include "test_hf_gguf_support.hpp"
#include "model_fixtures.hpp"

using namespace kiln;

namespace {

std::filesystem::path gguf_dir() { return test::models_dir() / "gguf"; }
std::filesystem::path vocab_dir() { return test::models_dir() / "vocab"; }

}  // namespace

TEST_CASE("gguf import: stories260K config and tokenizer") {
    const model_source source = load_gguf(gguf_dir() / "stories260K.gguf");
    const llama_config c = llama_config::from_metadata(source.meta);
    test::check_stories260K_shape(c);
    CHECK(c.context_length == 2048);
    CHECK(c.norm_eps == doctest::Approx(1e-5).epsilon(1e-6));
    CHECK(c.rope_theta == 10000.0);
    CHECK(c.rope == rope_style::interleaved);
    CHECK(source.meta.get_string("general.architecture") == "llama");

    const vocabulary v = vocabulary::from_metadata(source.meta);
    CHECK(v.model == "llama-spm");
    CHECK(v.size() == 512);
    CHECK(v.tokens[1] == "<s>");
    CHECK(v.tokens[3] == "<0x00>");
    CHECK(v.types[3] == int32_t(token_kind::byte));
    CHECK(v.types[0] == int32_t(token_kind::unknown));
    CHECK(v.bos_id == 1);
    CHECK(v.eos_id == 2);
    CHECK(v.unk_id == 0);
    CHECK(v.add_bos);
    CHECK(v.add_space_prefix);
}

TEST_CASE("gguf import: stories260K tensors equal the llama2c checkpoint bit for bit") {
    const model_source source = load_gguf(gguf_dir() / "stories260K.gguf");
    const auto expected = test::stories_bin_tensors();
    const auto tensors = test::by_name(source);
    CHECK(tensors.size() == expected.size() + 1);  // plus the explicit output copy
    for (const auto& [name, values] : expected) {
        CAPTURE(name);
        REQUIRE(tensors.count(name));
        CHECK(tensors.at(name)->source_type == "f32");
        CHECK(test::same_bits(test::read_all(*tensors.at(name)), values));
    }
    REQUIRE(tensors.count("output"));
    CHECK(tensors.at("output")->shape == std::vector<uint64_t>{512, 64});
    CHECK(test::same_bits(test::read_all(*tensors.at("output")), expected.at("token_embd")));
    CHECK(tensors.at("blk.0.attn_k")->shape == std::vector<uint64_t>{32, 64});
    CHECK(tensors.at("blk.0.ffn_down")->shape == std::vector<uint64_t>{64, 172});
}

TEST_CASE("gguf import: the tiny random Llama 2 has F16 matrices and a 32000-token vocabulary") {
    const auto path = gguf_dir() / "llama-2-tiny-random.gguf";
    const model_source source = load_gguf(path);
    const llama_config c = llama_config::from_metadata(source.meta);
    CHECK(c.dim == 8);
    CHECK(c.n_layers == 1);
    CHECK(c.hidden_dim == 32);
    CHECK(c.n_heads == 2);
    CHECK(c.head_dim == 4);
    CHECK(c.vocab_size == 32000);
    CHECK(c.context_length == 4096);
    const auto tensors = test::by_name(source);
    CHECK(tensors.size() == 12);
    REQUIRE(tensors.count("output"));
    CHECK(tensors.at("output")->shape == std::vector<uint64_t>{32000, 8});
    CHECK(tensors.at("token_embd")->source_type == "f16");
    CHECK(tensors.at("blk.0.attn_norm")->source_type == "f32");

    // Decoding agrees with converting the raw halves one by one.
    const gguf_file file = gguf_file::open(path);
    const gguf_tensor_info* info = file.find_tensor("blk.0.ffn_down.weight");
    REQUIRE(info);
    const auto raw = file.tensor_bytes(*info);
    const auto decoded = test::read_all(*tensors.at("blk.0.ffn_down"));
    REQUIRE(decoded.size() == 256);
    bool all_equal = true, any_nonzero = false;
    for (size_t i = 0; i < decoded.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, raw.data() + 2 * i, 2);
        all_equal = all_equal && decoded[i] == gguf_f16_to_f32(h);
        any_nonzero = any_nonzero || decoded[i] != 0.0f;
    }
    CHECK(all_equal);
    CHECK(any_nonzero);

    const vocabulary v = vocabulary::from_metadata(source.meta);
    CHECK(v.size() == 32000);
    CHECK(v.tokens[29871] == "\xE2\x96\x81");  // "▁", SentencePiece's space
}

TEST_CASE("gguf vocabulary: vocab-only files of both tokenizer models") {
    SUBCASE("llama-spm") {
        const gguf_file f = gguf_file::open(vocab_dir() / "ggml-vocab-llama-spm.gguf");
        CHECK(f.tensors().empty());
        const vocabulary v = vocabulary_from_gguf(f);
        CHECK(v.model == "llama-spm");
        CHECK(v.size() == 32000);
        CHECK(v.scores.size() == 32000);
        CHECK(v.tokens[2] == "</s>");
        CHECK(v.bos_id == 1);
        CHECK(v.add_bos);
        CHECK(v.add_space_prefix);
        CHECK(v.merges.empty());
    }
    SUBCASE("phi-3") {
        const vocabulary v = vocabulary_from_gguf(gguf_file::open(vocab_dir() / "ggml-vocab-phi-3.gguf"));
        CHECK(v.size() == 32064);
        CHECK(v.eos_id == 32000);
    }
    SUBCASE("gpt-2") {
        const vocabulary v = vocabulary_from_gguf(gguf_file::open(vocab_dir() / "ggml-vocab-gpt-2.gguf"));
        CHECK(v.model == "byte-bpe");
        CHECK(v.pre == "gpt-2");
        CHECK(v.size() == 50257);
        CHECK(v.merges.size() == 50000);
        CHECK(v.merges[0] == "\xC4\xA0 t");  // "Ġ t"
        CHECK(v.types.size() == 50257);
        CHECK(v.bos_id == 50256);
        CHECK(v.eos_id == 50256);
        CHECK(v.unk_id == -1);
        CHECK_FALSE(v.add_bos);
        CHECK_FALSE(v.add_space_prefix);
        metadata meta;
        v.to_metadata(meta);  // a complete, valid vocabulary
        CHECK(vocabulary::from_metadata(meta).merges.size() == 50000);
    }
    SUBCASE("deepseek-llm") {
        const vocabulary v = vocabulary_from_gguf(gguf_file::open(vocab_dir() / "ggml-vocab-deepseek-llm.gguf"));
        CHECK(v.pre == "deepseek-llm");
        CHECK(v.size() == 102400);
        CHECK(v.merges.size() == 99757);
        CHECK(v.bos_id == 100000);
        CHECK(v.add_bos);
    }
    SUBCASE("deepseek-coder") {
        const vocabulary v = vocabulary_from_gguf(gguf_file::open(vocab_dir() / "ggml-vocab-deepseek-coder.gguf"));
        CHECK(v.pre == "deepseek-coder");
        CHECK(v.size() == 32256);
        CHECK(v.merges.size() == 31757);
    }
}

TEST_CASE("gguf vocabulary: bad tokenizer metadata is refused") {
    test::temp_dir dir;
    auto path = dir / "vocab.gguf";
    auto vocab_error = [&](const test::gguf_bytes& g) {
        g.write(path);
        try {
            vocabulary_from_gguf(gguf_file::open(path));
        } catch (const file_error& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    test::gguf_bytes g;
    g.header(3, 0, 2).kv_string("tokenizer.ggml.model", "bert");
    g.key("tokenizer.ggml.tokens", 9).u32(8).u64(1).str("a");
    CHECK(vocab_error(g).find("unsupported tokenizer model 'bert'") != std::string::npos);
    g = {};
    g.header(3, 0, 3).kv_string("tokenizer.ggml.model", "llama");
    g.key("tokenizer.ggml.tokens", 9).u32(8).u64(2).str("a").str("b");
    g.key("tokenizer.ggml.scores", 9).u32(6).u64(1).pod(0.5f);
    CHECK(vocab_error(g).find("1 entries for 2 tokens") != std::string::npos);
    g = {};
    g.header(3, 0, 3).kv_string("tokenizer.ggml.model", "llama");
    g.key("tokenizer.ggml.tokens", 9).u32(8).u64(2).str("a").str("b");
    g.kv_u32("tokenizer.ggml.bos_token_id", 7);
    CHECK(vocab_error(g).find("is not a token id") != std::string::npos);
    g = {};
    g.header(3, 0, 2).kv_string("tokenizer.ggml.model", "llama");
    g.key("tokenizer.ggml.tokens", 9).u32(4).u64(1).u32(5);  // numbers, not strings
    CHECK(vocab_error(g).find("expected a string") != std::string::npos);
}

TEST_CASE("gguf import: a synthetic qwen2 file maps biases and quantized tensors with NEOX RoPE") {
    // dim 32, ffn 32, 1 block, 2 heads of 16, 1 kv head, vocabulary of 4 byte-bpe tokens.
    struct tensor {
        std::string name;
        std::vector<uint64_t> dims;  // GGUF order
        uint32_t type;
        std::string bytes;
    };
    auto f32_zeros = [](size_t n) { return std::string(n * 4, '\0'); };
    std::vector<tensor> tensors;
    // token_embd as Q8_0: row r is one block with d = 0.5 (f16 0x3800) and q[j] = j - r.
    std::string embd;
    for (int r = 0; r < 4; ++r) {
        embd += std::string("\x00\x38", 2);
        for (int j = 0; j < 32; ++j) embd += char(int8_t(j - r));
    }
    tensors.push_back({"token_embd.weight", {32, 4}, 8, embd});
    tensors.push_back({"output_norm.weight", {32}, 0, f32_zeros(32)});
    for (const char* name : {"attn_norm", "ffn_norm"}) tensors.push_back({std::string("blk.0.") + name + ".weight", {32}, 0, f32_zeros(32)});
    tensors.push_back({"blk.0.attn_q.weight", {32, 32}, 0, f32_zeros(32 * 32)});
    tensors.push_back({"blk.0.attn_q.bias", {32}, 0, f32_zeros(32)});
    tensors.push_back({"blk.0.attn_k.weight", {32, 16}, 0, f32_zeros(16 * 32)});
    tensors.push_back({"blk.0.attn_k.bias", {16}, 0, f32_zeros(16)});
    tensors.push_back({"blk.0.attn_v.weight", {32, 16}, 0, f32_zeros(16 * 32)});
    tensors.push_back({"blk.0.attn_v.bias", {16}, 0, f32_zeros(16)});
    tensors.push_back({"blk.0.attn_output.weight", {32, 32}, 0, f32_zeros(32 * 32)});
    for (const char* name : {"ffn_gate", "ffn_up", "ffn_down"})
        tensors.push_back({std::string("blk.0.") + name + ".weight", {32, 32}, 2, std::string(32 * 18, '\0')});  // Q4_0

    test::gguf_bytes g;
    g.header(3, tensors.size(), 11);
    g.kv_string("general.architecture", "qwen2");
    g.kv_u32("qwen2.embedding_length", 32).kv_u32("qwen2.feed_forward_length", 32).kv_u32("qwen2.block_count", 1);
    g.kv_u32("qwen2.attention.head_count", 2).kv_u32("qwen2.attention.head_count_kv", 1);
    g.kv_f32("qwen2.rope.freq_base", 1000000.0f);
    g.kv_string("tokenizer.ggml.model", "gpt2").kv_string("tokenizer.ggml.pre", "qwen2");
    g.key("tokenizer.ggml.tokens", 9).u32(8).u64(4).str("a").str("b").str("ab").str("<|endoftext|>");
    g.key("tokenizer.ggml.merges", 9).u32(8).u64(1).str("a b");
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        g.tensor_info(t.name, t.dims, t.type, offset);
        offset += (t.bytes.size() + 31) / 32 * 32;
    }
    g.pad_to(32);
    for (const auto& t : tensors) {
        g.out += t.bytes;
        g.pad_to(32);
    }
    test::temp_dir dir;
    g.write(dir / "qwen2.gguf");

    const model_source source = load_gguf(dir / "qwen2.gguf");
    const llama_config c = llama_config::from_metadata(source.meta);
    CHECK(c.rope == rope_style::neox);
    CHECK(c.head_dim == 16);
    CHECK(c.vocab_size == 4);
    CHECK(c.rope_theta == 1000000.0);
    CHECK(source.meta.get_string("general.source") == "gguf (qwen2)");
    const auto by = test::by_name(source);
    CHECK(by.size() == tensors.size());
    REQUIRE(by.count("blk.0.attn_k_bias"));
    CHECK(by.at("blk.0.attn_k_bias")->shape == std::vector<uint64_t>{16});
    CHECK(by.at("blk.0.ffn_up")->source_type == "q4_0");
    CHECK(by.at("token_embd")->source_type == "q8_0");
    const auto embd_values = test::read_all(*by.at("token_embd"));
    REQUIRE(embd_values.size() == 128);
    CHECK(embd_values[0] == 0.0f);
    CHECK(embd_values[31] == 15.5f);        // row 0, q = 31
    CHECK(embd_values[3 * 32 + 0] == -1.5f);  // row 3, q = -3
    const auto down = test::read_all(*by.at("blk.0.ffn_down"));
    CHECK(std::all_of(down.begin(), down.end(), [](float x) { return x == 0.0f; }));  // d = 0
    const vocabulary v = vocabulary::from_metadata(source.meta);
    CHECK(v.model == "byte-bpe");
    CHECK(v.pre == "qwen2");
    CHECK(v.merges == std::vector<std::string>{"a b"});
}
