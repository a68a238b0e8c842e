// Random-weight llama models of real shapes (TinyLlama, Llama 3.2, Qwen2.5, ...), written as .kiln
// files: benchmarks and tests of whole models without downloading any.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/formats/deepseek2_config.hpp"
#include "kiln/formats/model_config.hpp"
#include "kiln/formats/tensor_type.hpp"
#include "kiln/formats/vocabulary.hpp"

namespace kiln {

struct synthetic_preset {
    std::string name;         // e.g. "tinyllama-1.1b"
    std::string description;  // one line for help and errors
    llama_config config;
    bool tied_embeddings = false;  // no `output` tensor: token_embd is the classifier
    bool qkv_bias = false;         // blk.N.attn_{q,k,v}_bias (Qwen2)
    // Set for architecture deepseek2 (MLA + MoE); `config` then only summarises its dim,
    // n_layers, n_heads, vocab_size and context_length for code that reads any preset.
    std::optional<deepseek2_config> deepseek2;
};

const std::vector<synthetic_preset>& synthetic_presets();
// Throws kiln::error naming the known presets when `name` is not one of them.
const synthetic_preset& find_synthetic_preset(std::string_view name);

struct synthetic_options {
    tensor_type type = tensor_type::f32;  // for matrices, chosen per tensor as `convert` does
    uint64_t seed = 1;
    // A llama2.c tokenizer.bin to store instead of a made-up vocabulary; its size must be the
    // preset's vocab_size (else load_llama2c_tokenizer throws).
    std::optional<std::filesystem::path> tokenizer;
    // Called after each tensor: (done, total, name).
    std::function<void(size_t, size_t, const std::string&)> progress;
};

// A self-contained llama-spm vocabulary of exactly `size` tokens (size >= 259): <unk>, <s>, </s>,
// the 256 byte tokens <0x00>..<0xFF>, then made-up letter pieces whose prefixes are all pieces too,
// so that BPE merges reach them.
vocabulary synthetic_vocabulary(uint64_t size);

// Writes the preset with random weights (deterministic in seed) to `out`, atomically. Matrices are
// N(0, 1/cols)-like, so every activation stays O(1) and generation yields finite logits; norms
// are 1 plus small noise. Memory is bounded by one tensor.
void write_synthetic(const synthetic_preset& preset, const synthetic_options& options,
                     const std::filesystem::path& out);

}  // namespace kiln
