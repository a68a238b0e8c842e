// The Hugging Face folder importer: the derived stories260K folder gives back the llama2.c
// weights once HF's rotate-half Q/K row order is undone, tokenizer.model gives the tok512
// vocabulary, a synthetic sharded Qwen2 folder maps names, shapes, values and biases, and a
// folder with only tokenizer.json imports it, padded to config.json's vocab_size.
#include <doctest/doctest.h>

#include <bit>
#include <nlohmann/json.hpp>

#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"
#include "kiln/formats/hf_config.hpp"
#include "kiln/formats/llama2c_tokenizer.hpp"
#include "kiln/formats/model_config.hpp"
#include "kiln/runtime/fast_llama.hpp"
#include "kiln/runtime/reference_llama.hpp"
#include "test_hf_gguf_support.hpp"
#include "model_fixtures.hpp"

using namespace kiln;

namespace {

std::filesystem::path hf_stories() { return test::models_dir() / "hf" / "stories260K"; }

// HF's q_proj/k_proj row h*hd + j*(hd/2) + i is llama2.c's row h*hd + 2i + j (MANIFEST.md).
std::vector<float> undo_rotate_half(const std::vector<float>& hf, size_t heads, size_t head_dim, size_t cols) {
    std::vector<float> out(hf.size());
    for (size_t h = 0; h < heads; ++h)
        for (size_t j = 0; j < 2; ++j)
            for (size_t i = 0; i < head_dim / 2; ++i) {
                const size_t hf_row = h * head_dim + j * (head_dim / 2) + i, l2c_row = h * head_dim + 2 * i + j;
                std::copy_n(hf.begin() + long(hf_row * cols), cols, out.begin() + long(l2c_row * cols));
            }
    return out;
}

std::string load_error(const std::filesystem::path& dir) {
    try {
        load_hf_folder(dir);
    } catch (const file_error& e) {
        return e.what();
    }
    return "(no error)";
}

std::string f32_bytes(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

// Values as bf16 (top halves of f32 values that bf16 represents exactly).
std::string bf16_bytes(const std::vector<float>& v) {
    std::string s;
    for (float x : v) {
        uint32_t bits;
        std::memcpy(&bits, &x, 4);
        uint16_t top = uint16_t(bits >> 16);
        s.append(reinterpret_cast<const char*>(&top), 2);
    }
    return s;
}

// Distinct, exactly representable values for tensor number `id`: id + k/256 for k < 256.
std::vector<float> pattern(size_t n, int id) {
    std::vector<float> v(n);
    for (size_t k = 0; k < n; ++k) v[k] = float(id) + float(k % 256) / 256.0f;
    return v;
}

}  // namespace

TEST_CASE("hf import: stories260K config and tied embeddings") {
    const model_source source = load_hf_folder(hf_stories());
    const llama_config c = llama_config::from_metadata(source.meta);
    test::check_stories260K_shape(c);
    CHECK(c.context_length == 512);
    CHECK(c.norm_eps == 1e-5);
    CHECK(c.rope_theta == 10000.0);
    CHECK(c.rope == rope_style::neox);
    CHECK_FALSE(source.meta.has("llama.rope_scaling.type"));
    const auto tensors = test::by_name(source);
    CHECK(tensors.size() == 2 + 5 * 9);
    CHECK_FALSE(tensors.count("output"));  // tie_word_embeddings
}

TEST_CASE("hf import: stories260K tensors equal llama2c once the rotate-half permutation is undone") {
    const model_source source = load_hf_folder(hf_stories());
    const auto expected = test::stories_bin_tensors();
    const auto tensors = test::by_name(source);
    for (const auto& [name, values] : expected) {
        CAPTURE(name);
        REQUIRE(tensors.count(name));
        std::vector<float> got = test::read_all(*tensors.at(name));
        const bool is_q = name.find("attn_q") != std::string::npos, is_k = name.find("attn_k") != std::string::npos;
        if (is_q || is_k) {
            // Rows really are permuted in the file (so this test can tell the orders apart) ...
            CHECK_FALSE(test::same_bits(got, values));
            got = undo_rotate_half(got, is_q ? 8 : 4, 8, 64);
        }
        CHECK(test::same_bits(got, values));
    }
}

TEST_CASE("hf import: tokenizer.model gives the tok512 vocabulary") {
    const vocabulary sp = load_sentencepiece_model(hf_stories() / "tokenizer.model");
    CHECK(sp.model == "llama-spm");
    REQUIRE(sp.size() == 512);
    CHECK(sp.tokens[0] == "<unk>");
    CHECK(sp.tokens[1] == "<s>");
    CHECK(sp.tokens[3] == "<0x00>");
    CHECK(sp.types[0] == int32_t(token_kind::unknown));
    CHECK(sp.types[1] == int32_t(token_kind::control));
    CHECK(sp.types[258] == int32_t(token_kind::byte));
    CHECK(sp.unk_id == 0);
    CHECK(sp.bos_id == 1);
    CHECK(sp.eos_id == 2);
    CHECK(sp.add_space_prefix);
    CHECK(sp.add_bos);

    // Same pieces, scores and types as llama2.c's tok512.bin read the SentencePiece way ...
    const vocabulary l2c = load_llama2c_tokenizer(test::models_dir() / "llama2c" / "tok512.bin", 512);
    CHECK(sp.tokens == l2c.tokens);
    CHECK(sp.scores == l2c.scores);
    CHECK(sp.types == l2c.types);
    // ... and as the vocabulary embedded in stories260K.gguf.
    const vocabulary gg = vocabulary_from_gguf(gguf_file::open(test::models_dir() / "gguf" / "stories260K.gguf"));
    CHECK(sp.tokens == gg.tokens);
    CHECK(sp.scores == gg.scores);
    CHECK(sp.types == gg.types);
    size_t spaces = 0;
    for (const auto& t : sp.tokens) spaces += t.find("\xE2\x96\x81") != std::string::npos;
    CHECK(spaces == 91);  // "▁" stands for a space in 91 of the 512 pieces
}

TEST_CASE("hf import: a truncated or corrupt tokenizer.model is refused") {
    test::temp_dir dir;
    std::ifstream in(hf_stories() / "tokenizer.model", std::ios::binary);
    const std::string full((std::istreambuf_iterator<char>(in)), {});
    const auto path = dir / "tokenizer.model";
    size_t refused = 0, tried = 0;
    for (size_t cut = 1; cut < full.size(); cut += 7) {
        std::ofstream(path, std::ios::binary).write(full.data(), std::streamsize(cut));
        ++tried;
        try {
            load_sentencepiece_model(path);
        } catch (const file_error& e) {
            CHECK(std::string(e.what()).rfind(path.string(), 0) == 0);
            ++refused;
        }
    }
    // A cut that falls between two complete pieces is a valid (shorter) model; most cuts are not.
    CHECK(refused > tried / 2);
    std::ofstream(path, std::ios::binary).write("\x0a\xff\xff\xff\xff\x0f", 6);  // piece of length 2^32-1
    CHECK_THROWS_WITH_AS(load_sentencepiece_model(path), doctest::Contains("runs past the end"), file_error);
    std::ofstream(path, std::ios::binary).write("\x0b", 1);  // group wire type
    CHECK_THROWS_WITH_AS(load_sentencepiece_model(path), doctest::Contains("wire type"), file_error);
}

namespace {

// A two-shard Qwen2-style folder: hidden 8, ffn 16, 2 layers, 2 heads, 1 kv head (head_dim 4),
// vocabulary 512 (tokenizer.model of stories260K), q/k/v biases, untied lm_head.
struct qwen_folder {
    test::temp_dir dir;
    nlohmann::json config = {
        {"architectures", {"Qwen2ForCausalLM"}}, {"hidden_size", 8}, {"intermediate_size", 16},
        {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"vocab_size", 512},
        {"max_position_embeddings", 128}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0},
        {"tie_word_embeddings", false}, {"hidden_act", "silu"},
        {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}}}};
    std::map<std::string, std::vector<float>> values;  // kiln name -> expected values
    std::map<std::string, std::string> hf_to_kiln;
    std::vector<test::safetensors_entry> shard[2];

    qwen_folder() {
        int id = 0;
        auto add = [&](int which, const std::string& hf, const std::string& kiln, std::vector<uint64_t> shape,
                       const std::string& dtype) {
            auto v = pattern(test::element_count(shape), id++);
            if (dtype == "BF16")  // expect what bf16 keeps: the top 16 bits of each value
                for (float& x : v) x = std::bit_cast<float>(std::bit_cast<uint32_t>(x) & 0xFFFF0000u);
            values[kiln] = v;
            hf_to_kiln[hf] = kiln;
            shard[which].push_back({hf, dtype, shape, dtype == "BF16" ? bf16_bytes(v) : f32_bytes(v)});
        };
        add(0, "model.embed_tokens.weight", "token_embd", {512, 8}, "F32");
        for (int l = 0; l < 2; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".", b = "blk." + std::to_string(l) + ".";
            const int s = l;  // layer 0 in the first shard, layer 1 in the second
            add(s, p + "input_layernorm.weight", b + "attn_norm", {8}, "F32");
            add(s, p + "self_attn.q_proj.weight", b + "attn_q", {8, 8}, "BF16");
            add(s, p + "self_attn.q_proj.bias", b + "attn_q_bias", {8}, "F32");
            add(s, p + "self_attn.k_proj.weight", b + "attn_k", {4, 8}, "BF16");
            add(s, p + "self_attn.k_proj.bias", b + "attn_k_bias", {4}, "F32");
            add(s, p + "self_attn.v_proj.weight", b + "attn_v", {4, 8}, "F32");
            add(s, p + "self_attn.v_proj.bias", b + "attn_v_bias", {4}, "F32");
            add(s, p + "self_attn.o_proj.weight", b + "attn_output", {8, 8}, "F32");
            add(s, p + "post_attention_layernorm.weight", b + "ffn_norm", {8}, "F32");
            add(s, p + "mlp.gate_proj.weight", b + "ffn_gate", {16, 8}, "BF16");
            add(s, p + "mlp.up_proj.weight", b + "ffn_up", {16, 8}, "F32");
            add(s, p + "mlp.down_proj.weight", b + "ffn_down", {8, 16}, "F32");
        }
        add(1, "model.norm.weight", "output_norm", {8}, "F32");
        add(1, "lm_head.weight", "output", {512, 8}, "F32");
        std::filesystem::copy_file(hf_stories() / "tokenizer.model", dir / "tokenizer.model");
        write();
    }

    void write(bool with_index_entries = true) {
        test::write_safetensors(dir / "model-00001-of-00002.safetensors", shard[0]);
        test::write_safetensors(dir / "model-00002-of-00002.safetensors", shard[1]);
        nlohmann::json map = nlohmann::json::object();
        if (with_index_entries)
            for (int s = 0; s < 2; ++s)
                for (const auto& t : shard[s]) map[t.name] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
        std::ofstream(dir / "model.safetensors.index.json") << nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", map}}.dump();
        std::ofstream(dir / "config.json") << config.dump();
    }
};

}  // namespace

TEST_CASE("hf import: a sharded Qwen2 folder with biases and rope scaling") {
    qwen_folder q;
    const model_source source = load_hf_folder(q.dir.path());
    const llama_config c = llama_config::from_metadata(source.meta);
    CHECK(c.dim == 8);
    CHECK(c.n_layers == 2);
    CHECK(c.n_kv_heads == 1);
    CHECK(c.head_dim == 4);
    CHECK(c.rope_theta == 1000000.0);
    CHECK(c.norm_eps == 1e-6);
    CHECK(c.rope == rope_style::neox);
    CHECK(source.meta.get_string("llama.rope_scaling.type") == "llama3");
    CHECK(source.meta.get_f64("llama.rope_scaling.factor") == 8.0);
    CHECK(source.meta.get_f64("llama.rope_scaling.low_freq_factor") == 1.0);
    CHECK(source.meta.get_f64("llama.rope_scaling.high_freq_factor") == 4.0);
    CHECK(source.meta.get_u64("llama.rope_scaling.original_context_length") == 64);

    const auto tensors = test::by_name(source);
    CHECK(tensors.size() == q.values.size());
    for (const auto& [name, expected] : q.values) {
        CAPTURE(name);
        REQUIRE(tensors.count(name));
        CHECK(test::same_bits(test::read_all(*tensors.at(name)), expected));
    }
    CHECK(tensors.at("blk.1.attn_k_bias")->shape == std::vector<uint64_t>{4});
    CHECK(tensors.at("blk.0.attn_q")->source_type == "bf16");
    CHECK(tensors.at("blk.0.ffn_down")->shape == std::vector<uint64_t>{8, 16});
    CHECK(tensors.at("output")->shape == std::vector<uint64_t>{512, 8});
}

TEST_CASE("hf import: the sharded Qwen2 folder converts to the logits of the same model built directly") {
    qwen_folder q;
    // Built directly: the hyper-parameters written by hand, the tensors from the values the
    // folder was made of, the vocabulary (not what this test is about) from the import.
    const model_source imported = load_hf_folder(q.dir.path());
    llama_config c;
    c.dim = 8;
    c.hidden_dim = 16;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = 1;
    c.head_dim = 4;
    c.vocab_size = 512;
    c.context_length = 128;
    c.norm_eps = 1e-6;
    c.rope_theta = 1000000.0;
    c.rope = rope_style::neox;
    c.rope_scaling = {rope_scaling_type::llama3, 8.0, 1.0, 4.0, 64};
    model_source direct;
    c.to_metadata(direct.meta);
    vocabulary::from_metadata(imported.meta).to_metadata(direct.meta);
    for (const auto& [name, values] : q.values) {
        const auto* t = test::by_name(imported).at(name);
        direct.tensors.push_back({name, t->shape, "f32", [v = values](std::span<float> out) {
                                      std::copy(v.begin(), v.end(), out.begin());
                                  }});
    }
    test::temp_dir dir;
    write_kiln(imported, {}, dir / "imported.kiln");
    write_kiln(direct, {}, dir / "direct.kiln");
    auto a = model::load(dir / "imported.kiln"), b = model::load(dir / "direct.kiln");
    thread_pool pool(1);
    fast_llama fa(a, pool, {.kv_type = kernels::kv_type::f32}), fb(b, pool, {.kv_type = kernels::kv_type::f32});
    reference_llama ref(b);
    const std::vector<int32_t> tokens = {1, 300, 17, 450, 99, 511, 2, 64};
    for (size_t i = 0; i < tokens.size(); ++i) {
        auto la = fa.forward(tokens[i], int32_t(i));
        const std::vector<float> from_folder(la.begin(), la.end());
        auto lb = fb.forward(tokens[i], int32_t(i));
        CHECK(test::max_abs_diff(from_folder, lb) == 0.0);  // the same file contents, bit for bit
        double scale = 1.0;
        for (float x : from_folder) scale = std::max(scale, double(std::abs(x)));
        // The test's made-up weights give logits in the thousands: compare relative to them.
        CHECK(test::max_abs_diff(from_folder, ref.forward(tokens[i], int32_t(i))) < 1e-6 * scale);
    }
}

TEST_CASE("hf import: bad folders are refused with the file and the problem") {
    SUBCASE("a tensor missing from the index") {
        qwen_folder q;
        nlohmann::json index = test::read_json(q.dir / "model.safetensors.index.json");
        index["weight_map"].erase("model.layers.1.mlp.up_proj.weight");
        std::ofstream(q.dir / "model.safetensors.index.json") << index.dump();
        CHECK(load_error(q.dir.path()).find("tensor 'blk.1.ffn_up' is missing") != std::string::npos);
    }
    SUBCASE("the index places a tensor in a shard without it") {
        qwen_folder q;
        nlohmann::json index = test::read_json(q.dir / "model.safetensors.index.json");
        index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
        std::ofstream(q.dir / "model.safetensors.index.json") << index.dump();
        CHECK(load_error(q.dir.path()).find("does not hold tensor 'model.norm.weight'") != std::string::npos);
    }
    SUBCASE("a dtype that does not match the data size") {
        qwen_folder q;
        q.shard[1].back().dtype = "F16";  // lm_head bytes are f32
        q.write();
        CHECK(load_error(q.dir.path()).find("but its shape and dtype need") != std::string::npos);
    }
    SUBCASE("a dtype kiln does not import") {
        qwen_folder q;
        auto& t = q.shard[0][1];  // layer 0 attn_norm
        t.dtype = "I32";
        q.write();
        CHECK(load_error(q.dir.path()).find("dtype I32") != std::string::npos);
    }
    SUBCASE("a shape that disagrees with config.json") {
        qwen_folder q;
        q.config["intermediate_size"] = 24;
        q.write();
        CHECK(load_error(q.dir.path()).find("expected [8, 24]") != std::string::npos);
    }
    SUBCASE("untied without lm_head") {
        qwen_folder q;
        q.shard[1].pop_back();
        q.write();
        CHECK(load_error(q.dir.path()).find("lm_head.weight is missing") != std::string::npos);
    }
    SUBCASE("tied embeddings drop lm_head") {
        qwen_folder q;
        q.config["tie_word_embeddings"] = true;
        q.write();
        CHECK_FALSE(test::by_name(load_hf_folder(q.dir.path())).count("output"));
    }
    SUBCASE("unsupported architecture and rope scaling") {
        qwen_folder q;
        q.config["architectures"] = {"GPT2LMHeadModel"};
        q.write();
        CHECK(load_error(q.dir.path()).find("unsupported architecture 'GPT2LMHeadModel'") != std::string::npos);
        q.config["architectures"] = {"MistralForCausalLM"};
        q.config["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
        q.write();
        CHECK(load_error(q.dir.path()).find("unsupported rope_scaling type 'yarn'") != std::string::npos);
        q.config["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
        q.config["sliding_window"] = 4096;
        q.write();
        // Mistral has no q/k/v biases: the folder's bias tensors are now unexpected.
        CHECK(load_error(q.dir.path()).find("unexpected bias tensor") != std::string::npos);
    }
    SUBCASE("malformed config.json") {
        qwen_folder q;
        std::ofstream(q.dir / "config.json") << "{\"architectures\": [";
        CHECK(load_error(q.dir.path()).find("config.json: malformed JSON") != std::string::npos);
        q.config.erase("hidden_size");
        q.write();
        CHECK(load_error(q.dir.path()).find("\"hidden_size\" is missing") != std::string::npos);
    }
    SUBCASE("no tokenizer.model") {
        qwen_folder q;
        std::filesystem::remove(q.dir / "tokenizer.model");
        CHECK(load_error(q.dir.path()).find("no tokenizer.model") != std::string::npos);
    }
}

TEST_CASE("hf config: linear rope scaling and Mistral sliding window are kept for the runtime") {
    test::temp_dir dir;
    std::ofstream(dir / "config.json") << R"({"architectures":["MistralForCausalLM"],"hidden_size":64,
        "intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
        "vocab_size":1000,"sliding_window":4096,"rope_scaling":{"type":"linear","factor":2.0},"eos_token_id":[5,6]})";
    const hf_model_config c = parse_hf_config(dir / "config.json");
    CHECK(c.llama.head_dim == 16);
    CHECK(c.llama.rope_theta == 10000.0);
    CHECK(c.sliding_window == 4096u);
    REQUIRE(c.rope_scaling);
    CHECK(c.rope_scaling->type == "linear");
    CHECK(c.rope_scaling->factor == 2.0);
    CHECK(c.eos_id == 5);
    CHECK_FALSE(c.tie_word_embeddings);
    metadata meta;
    rope_scaling_to_metadata(*c.rope_scaling, meta);
    CHECK(meta.get_f64("llama.rope_scaling.factor") == 2.0);
    CHECK_FALSE(meta.has("llama.rope_scaling.low_freq_factor"));
}

namespace {

// GPT-2's byte -> printable code point table, as UTF-8: how byte-level BPE vocabularies spell bytes.
std::string byte_symbol(int byte) {
    static const std::vector<std::string> table = [] {
        std::vector<int> direct;
        for (int b = '!'; b <= '~'; ++b) direct.push_back(b);
        for (int b = 0xA1; b <= 0xAC; ++b) direct.push_back(b);
        for (int b = 0xAE; b <= 0xFF; ++b) direct.push_back(b);
        std::vector<std::string> symbols(256);
        int next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool kept = std::find(direct.begin(), direct.end(), b) != direct.end();
            const int cp = kept ? b : next++;
            std::string utf8;
            if (cp < 0x80) utf8 += char(cp);
            else {
                utf8 += char(0xC0 | (cp >> 6));
                utf8 += char(0x80 | (cp & 0x3F));
            }
            symbols[size_t(b)] = utf8;
        }
        return symbols;
    }();
    return table[size_t(byte)];
}

// A Qwen-style tokenizer.json: the 256 byte symbols, two merges ("Ġ" + "t", "h" + "e"), and the
// three ChatML added tokens: 261 ids in all, fewer than config.json's vocab_size of 512.
void write_byte_level_tokenizer(const std::filesystem::path& dir) {
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b) vocab[byte_symbol(b)] = b;
    vocab[byte_symbol(' ') + "t"] = 256;
    vocab["he"] = 257;
    nlohmann::json added = nlohmann::json::array();
    int id = 258;
    for (const char* special : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"})
        added.push_back({{"id", id++}, {"content", special}, {"special", true}});
    const nlohmann::json tokenizer = {
        {"added_tokens", added},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {byte_symbol(' ') + " t", "h e"}}}}};
    std::ofstream(dir / "tokenizer.json") << tokenizer.dump();
    const nlohmann::json config = {
        {"bos_token", nullptr}, {"eos_token", "<|im_end|>"}, {"add_bos_token", false},
        {"chat_template", "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"}};
    std::ofstream(dir / "tokenizer_config.json") << config.dump();
}

}  // namespace

TEST_CASE("hf import: tokenizer.json without tokenizer.model, padded to config.json's vocab_size") {
    qwen_folder q;
    std::filesystem::remove(q.dir / "tokenizer.model");
    write_byte_level_tokenizer(q.dir.path());
    const model_source source = load_hf_folder(q.dir.path());
    const vocabulary vocab = vocabulary::from_metadata(source.meta);
    CHECK(vocab.model == "byte-bpe");
    CHECK(vocab.pre == "gpt-2");
    REQUIRE(vocab.size() == 512);  // 261 real tokens and 251 placeholders for the embedding's rows
    CHECK(vocab.tokens[260] == "<|im_end|>");
    CHECK(vocab.eos_id == 260);
    CHECK(vocab.bos_id == -1);
    CHECK(vocab.tokens[261] == "[PAD261]");
    CHECK(vocab.types[511] == int32_t(token_kind::unused));
    CHECK(vocab.chat_template == "chatml");

    // The converted model loads and its tokenizer never produces a placeholder.
    const auto path = q.dir / "qwen.kiln";
    write_kiln(source, {}, path);
    auto m = model::load(path);
    CHECK(m->vocab().size() == m->config().vocab_size);
    const tokenizer tok(m->vocab());
    // Byte ids equal the byte values here: "the" is t + (h e), " tea" is (Ġ t) + e + a.
    const auto ids = tok.encode("<|im_start|>the tea<|im_end|>", false);
    CHECK(ids == std::vector<int32_t>{259, 't', 257, 256, 'e', 'a', 260});
    CHECK(tok.decode(ids) == "the tea");
    for (int32_t id : ids) CHECK(id < 261);
}

TEST_CASE("hf import: a tokenizer larger than config.json's vocab_size, or none at all, is refused") {
    qwen_folder q;
    std::filesystem::remove(q.dir / "tokenizer.model");
    write_byte_level_tokenizer(q.dir.path());
    q.config["vocab_size"] = 200;
    q.write();
    CHECK(load_error(q.dir.path()).find("tokenizer.json: has 261 tokens but config.json vocab_size is 200") !=
          std::string::npos);
    std::filesystem::remove(q.dir / "tokenizer.json");
    CHECK(load_error(q.dir.path()).find("no tokenizer.model or tokenizer.json") != std::string::npos);
}
