// write_synthetic: presets of real llama shapes filled with seeded random weights, quantized per
// row as `convert` does, plus a made-up vocabulary when no real tokenizer fits.
#include "kiln/formats/synthetic.hpp"

#include <cmath>

#include "kiln/formats/convert.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/kiln_writer.hpp"
#include "kiln/formats/llama2c_tokenizer.hpp"
#include "kiln/quant/quant.hpp"

namespace kiln {
namespace {

llama_config shape(uint64_t layers, uint64_t dim, uint64_t heads, uint64_t kv_heads, uint64_t head_dim,
                   uint64_t hidden, uint64_t vocab, uint64_t context, double theta, double eps, rope_style rope) {
    llama_config c;
    c.n_layers = layers;
    c.dim = dim;
    c.n_heads = heads;
    c.n_kv_heads = kv_heads;
    c.head_dim = head_dim;
    c.hidden_dim = hidden;
    c.vocab_size = vocab;
    c.context_length = context;
    c.rope_theta = theta;
    c.norm_eps = eps;
    c.rope = rope;
    return c;
}

// splitmix64: a fixed, portable stream (std::normal_distribution differs between standard
// libraries, which would break "same seed, same file").
struct random_stream {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    // Roughly N(0, 1): the sum of four 16-bit uniforms (Irwin-Hall, variance 1/3) scaled by
    // sqrt(3). One 64-bit draw per value keeps 1e9 weights to a few seconds.
    float normal() {
        const uint64_t r = next();
        const uint32_t sum = uint32_t(r & 0xffff) + uint32_t((r >> 16) & 0xffff) + uint32_t((r >> 32) & 0xffff) +
                             uint32_t(r >> 48);
        return (float(sum) * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
    }
};

// The values of one tensor: mean + stddev * normal().
struct value_spec {
    float mean;
    float stddev;
};

struct planned_tensor {
    std::string name;
    std::vector<uint64_t> shape;
    value_spec values;
};

std::vector<planned_tensor> plan_tensors(const synthetic_preset& preset) {
    const llama_config& c = preset.config;
    // 1/sqrt(cols) keeps W x at the scale of x; norms near 1 as trained models have them.
    auto matrix = [](uint64_t rows, uint64_t cols) {
        return planned_tensor{"", {rows, cols}, {0.0f, float(1.0 / std::sqrt(double(cols)))}};
    };
    const value_spec norm{1.0f, 0.02f}, bias{0.0f, 0.02f};
    std::vector<planned_tensor> plan;
    auto add = [&](std::string name, planned_tensor t) {
        t.name = std::move(name);
        plan.push_back(std::move(t));
    };
    add("token_embd", matrix(c.vocab_size, c.dim));
    for (uint64_t l = 0; l < c.n_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        add(p + "attn_norm", {"", {c.dim}, norm});
        add(p + "attn_q", matrix(c.q_dim(), c.dim));
        add(p + "attn_k", matrix(c.kv_dim(), c.dim));
        add(p + "attn_v", matrix(c.kv_dim(), c.dim));
        if (preset.qkv_bias) {
            add(p + "attn_q_bias", {"", {c.q_dim()}, bias});
            add(p + "attn_k_bias", {"", {c.kv_dim()}, bias});
            add(p + "attn_v_bias", {"", {c.kv_dim()}, bias});
        }
        add(p + "attn_output", matrix(c.dim, c.q_dim()));
        add(p + "ffn_norm", {"", {c.dim}, norm});
        add(p + "ffn_gate", matrix(c.hidden_dim, c.dim));
        add(p + "ffn_up", matrix(c.hidden_dim, c.dim));
        add(p + "ffn_down", matrix(c.dim, c.hidden_dim));
    }
    add("output_norm", {"", {c.dim}, norm});
    if (!preset.tied_embeddings) add("output", matrix(c.vocab_size, c.dim));
    return plan;
}

// The tensors of a deepseek2 model, named and shaped as formats/SPEC_deepseek2.md says.
std::vector<planned_tensor> plan_deepseek2(const deepseek2_config& c) {
    auto matrix = [](std::vector<uint64_t> shape) {
        const double cols = double(shape.back());
        return planned_tensor{"", std::move(shape), {0.0f, float(1.0 / std::sqrt(cols))}};
    };
    const value_spec norm{1.0f, 0.02f};
    std::vector<planned_tensor> plan;
    auto add = [&](std::string name, planned_tensor t) {
        t.name = std::move(name);
        plan.push_back(std::move(t));
    };
    const uint64_t h = c.n_heads;
    add("token_embd", matrix({c.vocab_size, c.dim}));
    for (uint64_t l = 0; l < c.n_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        add(p + "attn_norm", {"", {c.dim}, norm});
        if (c.q_lora_rank == 0) {
            add(p + "attn_q", matrix({h * c.qk_head_dim(), c.dim}));
        } else {
            add(p + "attn_q_a", matrix({c.q_lora_rank, c.dim}));
            add(p + "attn_q_a_norm", {"", {c.q_lora_rank}, norm});
            add(p + "attn_q_b", matrix({h * c.qk_head_dim(), c.q_lora_rank}));
        }
        add(p + "attn_kv_a_mqa", matrix({c.latent_dim(), c.dim}));
        add(p + "attn_kv_a_norm", {"", {c.kv_lora_rank}, norm});
        add(p + "attn_k_b", matrix({h, c.kv_lora_rank, c.qk_nope_head_dim}));
        add(p + "attn_v_b", matrix({h, c.v_head_dim, c.kv_lora_rank}));
        add(p + "attn_output", matrix({c.dim, h * c.v_head_dim}));
        add(p + "ffn_norm", {"", {c.dim}, norm});
        if (!c.is_moe_layer(l)) {
            add(p + "ffn_gate", matrix({c.hidden_dim, c.dim}));
            add(p + "ffn_up", matrix({c.hidden_dim, c.dim}));
            add(p + "ffn_down", matrix({c.dim, c.hidden_dim}));
            continue;
        }
        add(p + "ffn_gate_inp", matrix({c.n_experts, c.dim}));
        add(p + "ffn_gate_exps", matrix({c.n_experts, c.expert_hidden_dim, c.dim}));
        add(p + "ffn_up_exps", matrix({c.n_experts, c.expert_hidden_dim, c.dim}));
        add(p + "ffn_down_exps", matrix({c.n_experts, c.dim, c.expert_hidden_dim}));
        if (c.n_shared_experts > 0) {
            add(p + "ffn_gate_shexp", matrix({c.shared_hidden_dim(), c.dim}));
            add(p + "ffn_up_shexp", matrix({c.shared_hidden_dim(), c.dim}));
            add(p + "ffn_down_shexp", matrix({c.dim, c.shared_hidden_dim()}));
        }
    }
    add("output_norm", {"", {c.dim}, norm});
    add("output", matrix({c.vocab_size, c.dim}));
    return plan;
}

// A deepseek2 preset: `config` summarises the shape for code that reads any preset.
synthetic_preset deepseek2_preset(std::string name, std::string description, const deepseek2_config& c) {
    synthetic_preset p;
    p.name = std::move(name);
    p.description = std::move(description);
    p.config = shape(c.n_layers, c.dim, c.n_heads, c.n_heads, c.v_head_dim, c.hidden_dim ? c.hidden_dim : 1,
                     c.vocab_size, c.context_length, c.rope_theta, c.norm_eps, rope_style::interleaved);
    p.deepseek2 = c;
    return p;
}

// DeepSeek-V2-Lite as its config.json publishes it. The trained context is 163840 (YaRN x40
// over 4096); 8192 keeps a default latent cache small.
deepseek2_config deepseek_v2_lite() {
    deepseek2_config c;
    c.dim = 2048;
    c.n_layers = 27;
    c.n_heads = 16;
    c.q_lora_rank = 0;
    c.kv_lora_rank = 512;
    c.qk_nope_head_dim = 128;
    c.qk_rope_head_dim = 64;
    c.v_head_dim = 128;
    c.vocab_size = 102400;
    c.context_length = 8192;
    c.hidden_dim = 10944;
    c.n_dense_layers = 1;
    c.n_experts = 64;
    c.n_experts_used = 6;
    c.n_shared_experts = 2;
    c.expert_hidden_dim = 1408;
    c.norm_topk_prob = false;
    c.routed_scaling_factor = 1.0;
    c.norm_eps = 1e-6;
    c.rope_theta = 10000.0;
    c.yarn = {40.0, 4096, 32.0, 1.0, 0.707, 0.707};
    return c;
}

// For tests: every part of the architecture at toy size. YaRN with mscale != mscale_all_dim so
// that both the rotation's and the softmax's magnitude corrections are exercised.
deepseek2_config deepseek2_tiny(uint64_t q_lora_rank) {
    deepseek2_config c;
    c.dim = 64;
    c.n_layers = 3;
    c.n_heads = 4;
    c.q_lora_rank = q_lora_rank;
    c.kv_lora_rank = 32;
    c.qk_nope_head_dim = 16;
    c.qk_rope_head_dim = 8;
    c.v_head_dim = 16;
    c.vocab_size = 512;
    c.context_length = 256;
    c.hidden_dim = 128;
    c.n_dense_layers = 1;
    c.n_experts = 8;
    c.n_experts_used = 2;
    c.n_shared_experts = 1;
    c.expert_hidden_dim = 32;
    c.norm_topk_prob = q_lora_rank != 0;  // one variant each way
    c.routed_scaling_factor = q_lora_rank != 0 ? 1.0 : 1.5;
    c.norm_eps = 1e-6;
    c.rope_theta = 10000.0;
    c.yarn = {4.0, 64, 32.0, 1.0, 1.0, 0.707};
    return c;
}

}  // namespace

const std::vector<synthetic_preset>& synthetic_presets() {
    using rs = rope_style;
    static const std::vector<synthetic_preset> presets = {
        {"tiny", "2 layers of dim 64, vocab 512: for tests",
         shape(2, 64, 4, 2, 16, 256, 512, 256, 10000.0, 1e-5, rs::interleaved), false, false, std::nullopt},
        {"stories15m", "llama2.c stories15M: 6 layers, dim 288, vocab 32000",
         shape(6, 288, 6, 6, 48, 768, 32000, 256, 10000.0, 1e-5, rs::interleaved), true, false, std::nullopt},
        {"tinyllama-1.1b", "TinyLlama 1.1B: 22 layers, dim 2048, GQA 32/4, vocab 32000",
         shape(22, 2048, 32, 4, 64, 5632, 32000, 2048, 10000.0, 1e-5, rs::interleaved), false, false, std::nullopt},
        // The trained context is 131072; 8192 keeps a default KV cache at 256 MiB.
        {"llama-3.2-1b", "Llama 3.2 1B: 16 layers, dim 2048, GQA 32/8, vocab 128256, tied",
         shape(16, 2048, 32, 8, 64, 8192, 128256, 8192, 500000.0, 1e-5, rs::interleaved), true, false, std::nullopt},
        {"qwen2.5-0.5b", "Qwen2.5 0.5B: 24 layers, dim 896, GQA 14/2, vocab 151936, tied, q/k/v biases",
         shape(24, 896, 14, 2, 64, 4864, 151936, 32768, 1000000.0, 1e-6, rs::neox), true, true, std::nullopt},
        deepseek2_preset("deepseek-v2-lite",
                         "DeepSeek-V2-Lite: 27 layers, dim 2048, MLA (kv_lora 512), 64 experts top-6 + 2 shared, "
                         "vocab 102400",
                         deepseek_v2_lite()),
        deepseek2_preset("deepseek2-tiny", "deepseek2 of 3 layers, dim 64, MLA, 8 experts top-2: for tests",
                         deepseek2_tiny(0)),
        deepseek2_preset("deepseek2-tiny-qlora", "deepseek2-tiny with query compression (q_lora_rank 48)",
                         deepseek2_tiny(48)),
    };
    return presets;
}

const synthetic_preset& find_synthetic_preset(std::string_view name) {
    std::string known;
    for (const auto& p : synthetic_presets()) {
        if (p.name == name) return p;
        known += (known.empty() ? "" : ", ") + p.name;
    }
    throw error("unknown preset '" + std::string(name) + "' (known: " + known + ")");
}

vocabulary synthetic_vocabulary(uint64_t size) {
    if (size < 259) throw error("a synthetic vocabulary needs at least 259 tokens, not " + std::to_string(size));
    vocabulary v;
    auto push = [&](std::string piece, token_kind kind) {
        v.scores.push_back(kind == token_kind::normal ? -float(v.tokens.size()) : 0.0f);
        v.types.push_back(int32_t(kind));
        v.tokens.push_back(std::move(piece));
    };
    push("<unk>", token_kind::unknown);
    push("<s>", token_kind::control);
    push("</s>", token_kind::control);
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) push(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", token_kind::byte);
    const std::string space = "\xE2\x96\x81";  // U+2581, SentencePiece's space
    if (v.size() < size) push(space, token_kind::normal);
    // Letter strings in shortlex order (a..z, aa..zz, ...), each also with a leading space.
    for (uint64_t index = 0; v.size() < size; ++index) {
        std::string word;
        uint64_t n = index, length = 1, span = 26;
        while (n >= span) n -= span, span *= 26, ++length;
        for (uint64_t i = 0; i < length; ++i, n /= 26) word.insert(word.begin(), char('a' + n % 26));
        push(word, token_kind::normal);
        if (v.size() < size) push(space + word, token_kind::normal);
    }
    return v;
}

void write_synthetic(const synthetic_preset& preset, const synthetic_options& options,
                     const std::filesystem::path& out) {
    metadata meta;
    if (preset.deepseek2) {
        preset.deepseek2->validate();
        preset.deepseek2->to_metadata(meta);
    } else {
        preset.config.validate();
        preset.config.to_metadata(meta);
    }
    meta.set("general.name", preset.name);
    meta.set("general.source", "synthetic: preset " + preset.name + ", random weights, seed " +
                                   std::to_string(options.seed));
    vocabulary vocab = options.tokenizer ? load_llama2c_tokenizer(*options.tokenizer, preset.config.vocab_size)
                                         : synthetic_vocabulary(preset.config.vocab_size);
    vocab.to_metadata(meta);

    const std::vector<planned_tensor> plan = preset.deepseek2 ? plan_deepseek2(*preset.deepseek2) : plan_tensors(preset);
    convert_options type_choice;
    type_choice.type = options.type;
    kiln_writer writer(std::move(meta));
    for (size_t index = 0; index < plan.size(); ++index) {
        const planned_tensor& t = plan[index];
        const tensor_type type = choose_stored_type(t.name, t.shape, type_choice);
        // Each tensor's stream depends only on (seed, index): values do not shift when another
        // tensor's type changes.
        random_stream seeded{options.seed * 0x2545f4914f6cdd1dull + index};
        const uint64_t salt = seeded.next();
        writer.add_tensor(t.name, type, t.shape, [&t, type, salt](std::span<std::byte> bytes) {
            uint64_t rows = 1;  // every dim but the last (expert tensors are 3-D)
            for (size_t d = 0; d + 1 < t.shape.size(); ++d) rows *= t.shape[d];
            const uint64_t cols = t.shape.back();
            const uint64_t stride = row_bytes(type, cols);
            random_stream stream{salt};
            std::vector<float> row(cols);
            for (uint64_t r = 0; r < rows; ++r) {
                for (float& x : row) x = t.values.mean + t.values.stddev * stream.normal();
                quant::quantize_row(type, row.data(), bytes.data() + r * stride, cols);
            }
        });
    }
    writer.write(out, [&](size_t done, size_t total) {
        if (options.progress) options.progress(done, total, plan[done - 1].name);
    });
}

}  // namespace kiln
