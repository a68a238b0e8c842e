// Shared fixtures: stories260K converted once per test process into a temporary .kiln file.
#pragma once
#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <span>

#include "kiln/formats/convert.hpp"
#include "kiln/formats/import.hpp"
#include "kiln/formats/model_config.hpp"
#include "kiln/runtime/generate.hpp"
#include "kiln/runtime/model.hpp"
#include "kiln/runtime/tokenizer.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

namespace kiln::test {

inline std::filesystem::path stories_bin() { return models_dir() / "llama2c" / "stories260K.bin"; }
inline std::filesystem::path tok512_bin() { return models_dir() / "llama2c" / "tok512.bin"; }
inline nlohmann::json stories_reference() { return read_json(models_dir() / "llama2c" / "stories260K.reference.json"); }

// stories260K.bin converted with the given options into a file that lives as long as the process.
inline std::filesystem::path converted_stories(const convert_options& options = {}) {
    static temp_dir dir;
    static int counter = 0;
    auto path = dir / ("stories260K-" + std::to_string(counter++) + ".kiln");
    write_kiln(load_llama2c(stories_bin(), tok512_bin()), options, path);
    return path;
}

// The shape every importer must read for stories260K (context and RoPE style differ by source).
inline void check_stories260K_shape(const llama_config& c) {
    CHECK(c.dim == 64);
    CHECK(c.hidden_dim == 172);
    CHECK(c.n_layers == 5);
    CHECK(c.n_heads == 8);
    CHECK(c.n_kv_heads == 4);
    CHECK(c.head_dim == 8);
    CHECK(c.vocab_size == 512);
}

// stories260K.bin converted with matrices in `type`.
inline std::filesystem::path stories_of_type(tensor_type type) {
    convert_options options;
    options.type = type;
    return converted_stories(options);
}

// The prompt followed by n greedy tokens (fewer when the model stops on nothing: no stop tokens).
inline std::vector<int32_t> greedy_tokens(language_model& lm, const std::vector<int32_t>& prompt, int32_t n) {
    sampler greedy(sampler_params{.temperature = 0}, size_t(lm.vocab_size()));
    generation_request request{prompt, n, {}};
    std::vector<int32_t> out = prompt;
    generate(lm, request, greedy, [&](int32_t id) { out.push_back(id); });
    return out;
}

// The perplexity corpus, tokenized with the model's vocabulary.
inline std::vector<int32_t> text_tokens(const model& m) {
    std::ifstream in(models_dir() / "text" / "stories260K-samples.txt", std::ios::binary);
    const std::string text(std::istreambuf_iterator<char>(in), {});
    return tokenizer(m.vocab()).encode(text, true);
}

inline double max_abs_diff(std::span<const float> a, std::span<const float> b) {
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - b[i]));
    return worst;
}

}  // namespace kiln::test
