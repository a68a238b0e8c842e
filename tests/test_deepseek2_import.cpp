// The Hugging Face DeepseekV2ForCausalLM importer: a folder written here in HF's layout (kv_b_proj
// combined, one tensor per expert, config.json as DeepSeek publishes it) from a synthetic
// deepseek2 model converts back to a model with the same logits.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "deepseek2_fixtures.hpp"
#include "kiln/formats/convert.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"
#include "kiln/formats/hf_config.hpp"
#include "kiln/runtime/fast_deepseek2.hpp"
#include "model_fixtures.hpp"
#include "test_hf_gguf_support.hpp"

using namespace kiln;

namespace {

std::string f32_bytes(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

// GPT-2's printable stand-in for byte b (bytes that are not printable map above 255).
std::string byte_symbol(int b) {
    int cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
        int n = 0;
        for (int x = 0; x < b; ++x)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
        cp = 256 + n;
    }
    std::string s;
    if (cp < 0x80) s += char(cp);
    else s += char(0xC0 | (cp >> 6)), s += char(0x80 | (cp & 0x3F));
    return s;
}

// A minimal byte-level tokenizer.json (the real DeepSeek-V2 one is byte-level BPE too).
void write_tokenizer(const std::filesystem::path& dir) {
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b) vocab[byte_symbol(b)] = b;
    vocab["he"] = 256;
    const nlohmann::json added = nlohmann::json::array(
        {{{"id", 257}, {"content", "<｜begin▁of▁sentence｜>"}, {"special", true}},
         {{"id", 258}, {"content", "<｜end▁of▁sentence｜>"}, {"special", true}}});
    const nlohmann::json tokenizer = {
        {"added_tokens", added},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"h e"}}}}};
    std::ofstream(dir / "tokenizer.json") << tokenizer.dump();
}

// config.json with DeepSeek's field names for the model's configuration.
nlohmann::json hf_config(const deepseek2_config& c) {
    nlohmann::json j = {
        {"architectures", {"DeepseekV2ForCausalLM"}},
        {"model_type", "deepseek_v2"},
        {"hidden_size", c.dim},
        {"num_hidden_layers", c.n_layers},
        {"num_attention_heads", c.n_heads},
        {"num_key_value_heads", c.n_heads},
        {"q_lora_rank", c.q_lora_rank ? nlohmann::json(c.q_lora_rank) : nlohmann::json(nullptr)},
        {"kv_lora_rank", c.kv_lora_rank},
        {"qk_nope_head_dim", c.qk_nope_head_dim},
        {"qk_rope_head_dim", c.qk_rope_head_dim},
        {"v_head_dim", c.v_head_dim},
        {"vocab_size", c.vocab_size},
        {"max_position_embeddings", c.context_length},
        {"intermediate_size", c.hidden_dim},
        {"first_k_dense_replace", c.n_dense_layers},
        {"n_routed_experts", c.n_experts},
        {"num_experts_per_tok", c.n_experts_used},
        {"n_shared_experts", c.n_shared_experts},
        {"moe_intermediate_size", c.expert_hidden_dim},
        {"moe_layer_freq", 1},
        {"topk_method", "greedy"},
        {"scoring_func", "softmax"},
        {"n_group", 1},
        {"topk_group", 1},
        {"norm_topk_prob", c.norm_topk_prob},
        {"routed_scaling_factor", c.routed_scaling_factor},
        {"rms_norm_eps", c.norm_eps},
        {"rope_theta", c.rope_theta},
        {"tie_word_embeddings", false},
        {"attention_bias", false},
        {"rope_scaling",
         {{"type", "yarn"},
          {"factor", c.yarn.factor},
          {"original_max_position_embeddings", c.yarn.original_context_length},
          {"beta_fast", c.yarn.beta_fast},
          {"beta_slow", c.yarn.beta_slow},
          {"mscale", c.yarn.mscale},
          {"mscale_all_dim", c.yarn.mscale_all_dim}}}};
    return j;
}

// The model's weights in HF's layout and names, in two shards with an index.
void write_hf_folder(const model& m, const std::filesystem::path& dir) {
    const deepseek2_config& c = m.deepseek2();
    std::vector<test::safetensors_entry> entries;
    auto put = [&](const std::string& name, std::vector<uint64_t> shape, const std::vector<float>& values) {
        entries.push_back({name, "F32", std::move(shape), f32_bytes(values)});
    };
    auto get = [&](const tensor_view* t) { return tensor_to_f32(*t); };
    put("model.embed_tokens.weight", {c.vocab_size, c.dim}, get(m.weights().token_embd));
    const uint64_t H = c.n_heads, nope = c.qk_nope_head_dim, vd = c.v_head_dim, lora = c.kv_lora_rank;
    for (uint64_t l = 0; l < c.n_layers; ++l) {
        const deepseek2_layer_weights& L = m.deepseek2_layers().layers[l];
        const std::string p = "model.layers." + std::to_string(l) + ".";
        put(p + "input_layernorm.weight", {c.dim}, get(L.attn_norm));
        if (c.q_lora_rank == 0) {
            put(p + "self_attn.q_proj.weight", {H * c.qk_head_dim(), c.dim}, get(L.attn_q));
        } else {
            put(p + "self_attn.q_a_proj.weight", {c.q_lora_rank, c.dim}, get(L.attn_q_a));
            put(p + "self_attn.q_a_layernorm.weight", {c.q_lora_rank}, get(L.attn_q_a_norm));
            put(p + "self_attn.q_b_proj.weight", {H * c.qk_head_dim(), c.q_lora_rank}, get(L.attn_q_b));
        }
        put(p + "self_attn.kv_a_proj_with_mqa.weight", {c.latent_dim(), c.dim}, get(L.attn_kv_a_mqa));
        put(p + "self_attn.kv_a_layernorm.weight", {lora}, get(L.attn_kv_a_norm));
        // kv_b_proj [H * (nope + v), lora]: per head W_UK (= attn_k_b[h] transposed), then W_UV.
        const auto k_b = get(L.attn_k_b), v_b = get(L.attn_v_b);
        std::vector<float> kv_b(H * (nope + vd) * lora);
        for (uint64_t h = 0; h < H; ++h) {
            for (uint64_t i = 0; i < nope; ++i)
                for (uint64_t r = 0; r < lora; ++r)
                    kv_b[(h * (nope + vd) + i) * lora + r] = k_b[(h * lora + r) * nope + i];
            std::copy_n(v_b.begin() + long(h * vd * lora), vd * lora, kv_b.begin() + long((h * (nope + vd) + nope) * lora));
        }
        put(p + "self_attn.kv_b_proj.weight", {H * (nope + vd), lora}, kv_b);
        put(p + "self_attn.o_proj.weight", {c.dim, H * vd}, get(L.attn_output));
        put(p + "self_attn.rotary_emb.inv_freq", {c.qk_rope_head_dim / 2}, std::vector<float>(c.qk_rope_head_dim / 2, 1.0f));
        put(p + "post_attention_layernorm.weight", {c.dim}, get(L.ffn_norm));
        if (!c.is_moe_layer(l)) {
            put(p + "mlp.gate_proj.weight", {c.hidden_dim, c.dim}, get(L.ffn_gate));
            put(p + "mlp.up_proj.weight", {c.hidden_dim, c.dim}, get(L.ffn_up));
            put(p + "mlp.down_proj.weight", {c.dim, c.hidden_dim}, get(L.ffn_down));
            continue;
        }
        put(p + "mlp.gate.weight", {c.n_experts, c.dim}, get(L.ffn_gate_inp));
        const uint64_t eh = c.expert_hidden_dim;
        const auto gate = get(L.ffn_gate_exps), up = get(L.ffn_up_exps), down = get(L.ffn_down_exps);
        for (uint64_t e = 0; e < c.n_experts; ++e) {
            const std::string x = p + "mlp.experts." + std::to_string(e) + ".";
            const long o = long(e * eh * c.dim);
            put(x + "gate_proj.weight", {eh, c.dim}, std::vector<float>(gate.begin() + o, gate.begin() + o + long(eh * c.dim)));
            put(x + "up_proj.weight", {eh, c.dim}, std::vector<float>(up.begin() + o, up.begin() + o + long(eh * c.dim)));
            put(x + "down_proj.weight", {c.dim, eh}, std::vector<float>(down.begin() + o, down.begin() + o + long(eh * c.dim)));
        }
        put(p + "mlp.shared_experts.gate_proj.weight", {c.shared_hidden_dim(), c.dim}, get(L.ffn_gate_shexp));
        put(p + "mlp.shared_experts.up_proj.weight", {c.shared_hidden_dim(), c.dim}, get(L.ffn_up_shexp));
        put(p + "mlp.shared_experts.down_proj.weight", {c.dim, c.shared_hidden_dim()}, get(L.ffn_down_shexp));
    }
    put("model.norm.weight", {c.dim}, get(m.weights().output_norm));
    put("lm_head.weight", {c.vocab_size, c.dim}, get(m.weights().output));
    // Two shards, as real checkpoints come.
    const size_t half = entries.size() / 2;
    const std::vector<test::safetensors_entry> first(entries.begin(), entries.begin() + long(half)),
        second(entries.begin() + long(half), entries.end());
    test::write_safetensors(dir / "model-00001-of-00002.safetensors", first);
    test::write_safetensors(dir / "model-00002-of-00002.safetensors", second);
    nlohmann::json map = nlohmann::json::object();
    for (const auto& e : first) map[e.name] = "model-00001-of-00002.safetensors";
    for (const auto& e : second) map[e.name] = "model-00002-of-00002.safetensors";
    std::ofstream(dir / "model.safetensors.index.json") << nlohmann::json{{"metadata", nlohmann::json::object()}, {"weight_map", map}}.dump();
    std::ofstream(dir / "config.json") << hf_config(c).dump(2);
    write_tokenizer(dir);
}

}  // namespace

TEST_CASE("deepseek2 import: an HF DeepseekV2ForCausalLM folder converts to the same logits as the model built directly") {
    thread_pool pool(2);
    for (const std::string preset : {"deepseek2-tiny", "deepseek2-tiny-qlora"}) {
        CAPTURE(preset);
        test::temp_dir dir;
        auto direct = model::load(test::deepseek2_tiny(preset));
        write_hf_folder(*direct, dir.path());
        const auto out = dir / "converted.kiln";
        write_kiln(load_hf_folder(dir.path()), {}, out);
        auto converted = model::load(out);
        REQUIRE(converted->is_deepseek2());
        CHECK(converted->deepseek2() == direct->deepseek2());
        CHECK(converted->vocab().model == "byte-bpe");
        // Same weights bit for bit, so the same logits bit for bit.
        const std::vector<int32_t> tokens = {1, 300, 301, 4, 511, 77, 250, 9};
        fast_deepseek2 a(direct, pool), b(converted, pool);
        const auto la = a.forward_batch(tokens, 0, true);
        const std::vector<float> expected(la.begin(), la.end());
        CHECK(test::max_abs_diff(expected, b.forward_batch(tokens, 0, true)) == 0.0);
    }
}

TEST_CASE("deepseek2 import: unsupported routing and bad folders are refused naming the problem") {
    test::temp_dir dir;
    auto direct = model::load(test::deepseek2_tiny("deepseek2-tiny"));
    write_hf_folder(*direct, dir.path());
    auto config = test::read_json(dir / "config.json");
    auto error_of = [&](const nlohmann::json& j) -> std::string {
        std::ofstream(dir / "config.json") << j.dump();
        try {
            load_hf_folder(dir.path());
        } catch (const file_error& e) {
            return e.what();
        }
        return "(no error)";
    };
    CHECK(error_of(config) == "(no error)");
    auto j = config;
    j["topk_method"] = "group_limited_greedy";
    CHECK(error_of(j).find("topk_method") != std::string::npos);
    j = config;
    j["rope_scaling"]["type"] = "linear";
    CHECK(error_of(j).find("rope_scaling type 'linear'") != std::string::npos);
    j = config;
    j["v_head_dim"] = 8;  // kv_b_proj then has the wrong shape
    CHECK(error_of(j).find("kv_b_proj.weight' has shape") != std::string::npos);
    j = config;
    j.erase("kv_lora_rank");
    CHECK(error_of(j).find("\"kv_lora_rank\" is missing") != std::string::npos);
}

namespace {

struct gguf_tensor {
    std::string name;
    std::vector<uint64_t> shape;  // kiln order (outermost first); written reversed
    std::vector<float> values;
};

// The model as llama.cpp's converter writes a deepseek2 GGUF: kiln's tensor names plus ".weight",
// dims innermost first, and either the combined attn_kv_b (older files) or attn_k_b/attn_v_b.
void write_gguf(const model& m, const std::filesystem::path& path, bool combined_kv_b) {
    const deepseek2_config& c = m.deepseek2();
    std::vector<gguf_tensor> tensors;
    const uint64_t H = c.n_heads, nope = c.qk_nope_head_dim, vd = c.v_head_dim, lora = c.kv_lora_rank;
    for (const tensor_view& t : m.file().tensors()) {
        if (combined_kv_b && t.name.ends_with("attn_v_b")) continue;
        if (combined_kv_b && t.name.ends_with("attn_k_b")) {
            const std::string block = t.name.substr(0, t.name.size() - 8);
            const auto k_b = tensor_to_f32(t), v_b = tensor_to_f32(m.file().get(block + "attn_v_b"));
            std::vector<float> kv_b(H * (nope + vd) * lora);
            for (uint64_t h = 0; h < H; ++h) {
                for (uint64_t i = 0; i < nope; ++i)
                    for (uint64_t r = 0; r < lora; ++r)
                        kv_b[(h * (nope + vd) + i) * lora + r] = k_b[(h * lora + r) * nope + i];
                std::copy_n(v_b.begin() + long(h * vd * lora), vd * lora,
                            kv_b.begin() + long((h * (nope + vd) + nope) * lora));
            }
            tensors.push_back({block + "attn_kv_b", {H * (nope + vd), lora}, kv_b});
            continue;
        }
        tensors.push_back({t.name, t.shape, tensor_to_f32(t)});
    }
    test::gguf_bytes g;
    const std::string p = "deepseek2.";
    const bool mla_keys = !combined_kv_b;  // newer files describe the latent head too
    g.header(3, tensors.size(), 29 + (mla_keys ? 2 : 0) + (c.q_lora_rank ? 1 : 0));
    g.kv_string("general.architecture", "deepseek2");
    g.kv_u32(p + "embedding_length", uint32_t(c.dim)).kv_u32(p + "block_count", uint32_t(c.n_layers));
    g.kv_u32(p + "attention.head_count", uint32_t(H));
    g.kv_u32(p + "attention.head_count_kv", mla_keys ? 1 : uint32_t(H));
    if (c.q_lora_rank) g.kv_u32(p + "attention.q_lora_rank", uint32_t(c.q_lora_rank));
    g.kv_u32(p + "attention.kv_lora_rank", uint32_t(lora));
    g.kv_u32(p + "rope.dimension_count", uint32_t(c.qk_rope_head_dim));
    if (mla_keys) {
        g.kv_u32(p + "attention.key_length", uint32_t(c.latent_dim())).kv_u32(p + "attention.value_length", uint32_t(lora));
        g.kv_u32(p + "attention.key_length_mla", uint32_t(c.qk_head_dim()));
        g.kv_u32(p + "attention.value_length_mla", uint32_t(vd));
    } else {
        g.kv_u32(p + "attention.key_length", uint32_t(c.qk_head_dim())).kv_u32(p + "attention.value_length", uint32_t(vd));
    }
    g.kv_u32(p + "context_length", uint32_t(c.context_length)).kv_u32(p + "feed_forward_length", uint32_t(c.hidden_dim));
    g.kv_u32(p + "leading_dense_block_count", uint32_t(c.n_dense_layers)).kv_u32(p + "expert_count", uint32_t(c.n_experts));
    g.kv_u32(p + "expert_used_count", uint32_t(c.n_experts_used)).kv_u32(p + "expert_shared_count", uint32_t(c.n_shared_experts));
    g.kv_u32(p + "expert_feed_forward_length", uint32_t(c.expert_hidden_dim));
    g.kv_f32(p + "expert_weights_scale", float(c.routed_scaling_factor));
    g.key(p + "expert_weights_norm", 7).pod(uint8_t(c.norm_topk_prob));
    g.kv_u32(p + "expert_gating_func", 1);
    g.kv_f32(p + "attention.layer_norm_rms_epsilon", float(c.norm_eps)).kv_f32(p + "rope.freq_base", float(c.rope_theta));
    g.kv_string(p + "rope.scaling.type", "yarn").kv_f32(p + "rope.scaling.factor", float(c.yarn.factor));
    g.kv_u32(p + "rope.scaling.original_context_length", uint32_t(c.yarn.original_context_length));
    g.kv_f32(p + "rope.scaling.yarn_log_multiplier", float(0.1 * c.yarn.mscale_all_dim));
    g.kv_string("tokenizer.ggml.model", "gpt2").kv_string("tokenizer.ggml.pre", "deepseek-llm");
    g.key("tokenizer.ggml.tokens", 9).u32(8).u64(4).str("a").str("b").str("ab").str("<｜end▁of▁sentence｜>");
    g.key("tokenizer.ggml.merges", 9).u32(8).u64(1).str("a b");
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        g.tensor_info(t.name + ".weight", {t.shape.rbegin(), t.shape.rend()}, 0, offset);
        offset += (t.values.size() * 4 + 31) / 32 * 32;
    }
    g.pad_to(32);
    for (const auto& t : tensors) {
        g.out += f32_bytes(t.values);
        g.pad_to(32);
    }
    g.write(path);
}

}  // namespace

TEST_CASE("deepseek2 import: GGUF deepseek2 files, combined attn_kv_b or split attn_k_b/attn_v_b, give the same logits") {
    thread_pool pool(2);
    for (const std::string preset : {"deepseek2-tiny", "deepseek2-tiny-qlora"}) {
        for (bool combined : {true, false}) {
            CAPTURE(preset);
            CAPTURE(combined);
            test::temp_dir dir;
            // GGUF keeps only mscale_all_dim (llama.cpp assumes mscale equal to it, as every
            // DeepSeek-V2 release has it), so the model written directly must too.
            synthetic_preset p = find_synthetic_preset(preset);
            p.deepseek2->yarn.mscale = p.deepseek2->yarn.mscale_all_dim;
            synthetic_options options;
            options.seed = 23;
            write_synthetic(p, options, dir / "direct.kiln");
            auto direct = model::load(dir / "direct.kiln");
            write_gguf(*direct, dir / "model.gguf", combined);
            write_kiln(load_gguf(dir / "model.gguf"), {}, dir / "converted.kiln");
            auto converted = model::load(dir / "converted.kiln");
            REQUIRE(converted->is_deepseek2());
            const deepseek2_config& a = direct->deepseek2();
            const deepseek2_config& b = converted->deepseek2();
            CHECK(b.kv_lora_rank == a.kv_lora_rank);
            CHECK(b.qk_nope_head_dim == a.qk_nope_head_dim);
            CHECK(b.v_head_dim == a.v_head_dim);
            CHECK(b.n_dense_layers == a.n_dense_layers);
            CHECK(b.norm_topk_prob == a.norm_topk_prob);
            CHECK(b.yarn.mscale_all_dim == doctest::Approx(a.yarn.mscale_all_dim));
            const std::vector<int32_t> tokens = {1, 300, 301, 4, 511, 77, 250, 9};
            fast_deepseek2 fa(direct, pool), fb(converted, pool);
            const auto la = fa.forward_batch(tokens, 0, true);
            const std::vector<float> expected(la.begin(), la.end());
            // Weights are bit-identical; hyper-parameters pass through GGUF's f32 (eps, scale).
            CHECK(test::max_abs_diff(expected, fb.forward_batch(tokens, 0, true)) < 1e-4);
        }
    }
}
