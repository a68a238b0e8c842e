// Shared fixtures of the deepseek2 tests: tiny synthetic deepseek2 models written once per process.
#pragma once
#include <map>
#include <string>

#include "kiln/formats/synthetic.hpp"
#include "test_support.hpp"

namespace kiln::test {

// The preset (deepseek2-tiny or deepseek2-tiny-qlora) with matrices of `type`, written once.
inline std::filesystem::path deepseek2_tiny(const std::string& preset, tensor_type type = tensor_type::f32) {
    static temp_dir dir;
    static std::map<std::string, std::filesystem::path> written;
    const std::string key = preset + "-" + std::string(type_name(type));
    if (auto it = written.find(key); it != written.end()) return it->second;
    synthetic_options options;
    options.type = type;
    options.seed = 17;
    const auto path = dir / (key + ".kiln");
    write_synthetic(find_synthetic_preset(preset), options, path);
    return written[key] = path;
}

}  // namespace kiln::test
