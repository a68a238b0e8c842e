// Shared fixtures: stories260K converted once per test process into a temporary .kiln file.
#pragma once
#include <memory>

#include "kiln/formats/convert.hpp"
#include "kiln/formats/import.hpp"
#include "kiln/formats/model_config.hpp"
#include "kiln/runtime/model.hpp"
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

}  // namespace kiln::test
