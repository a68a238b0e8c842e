// llama.cpp's tokenizer test vectors: X.gguf.inp holds the strings, each followed by
// "\n__ggml_vocab_test__\n"; X.gguf.out one line of space-separated ids per string.
#pragma once
#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace kiln::test {

struct vocab_test_case {
    std::string text;
    std::vector<int32_t> ids;
};

inline std::vector<vocab_test_case> read_vocab_tests(const std::string& name) {
    const std::filesystem::path base = models_dir() / "vocab" / name;
    std::ifstream inp(base.string() + ".inp", std::ios::binary);
    const std::string all(std::istreambuf_iterator<char>(inp), {});
    const std::string separator = "\n__ggml_vocab_test__\n";
    std::vector<vocab_test_case> cases;
    for (size_t start = 0; start < all.size();) {
        const size_t end = all.find(separator, start);
        REQUIRE(end != std::string::npos);
        cases.push_back({all.substr(start, end - start), {}});
        start = end + separator.size();
    }
    std::ifstream out(base.string() + ".out");
    std::string line;
    for (auto& c : cases) {
        REQUIRE(std::getline(out, line));
        std::istringstream numbers(line);
        for (int32_t id; numbers >> id;) c.ids.push_back(id);
    }
    return cases;
}

}  // namespace kiln::test
