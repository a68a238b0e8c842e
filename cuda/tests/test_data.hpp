// Inputs the CUDA kernel tests share: normal random vectors, and weights quantized as a .kiln
// file stores them, re-ordered into the device's block order, with the values they hold.
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "kiln/formats/tensor_type.hpp"
#include "kiln/quant/quant.hpp"

namespace kiln::test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

struct quantized {
    std::vector<std::byte> bytes;
    std::vector<float> values;  // what the bytes hold, dequantized by the reference
};

inline quantized quantize(tensor_type type, const std::vector<float>& values, size_t rows, size_t cols) {
    const size_t row = size_t(row_bytes(type, cols));
    quantized q{std::vector<std::byte>(rows * row), std::vector<float>(rows * cols)};
    std::vector<std::byte> stored(row);  // as a .kiln file holds it (q8_0/q4_0 rows grouped)
    for (size_t r = 0; r < rows; ++r) {
        quant::quantize_row(type, values.data() + r * cols, stored.data(), cols);
        quant::dequantize_row(type, stored.data(), q.values.data() + r * cols, cols);
        quant::ungroup_row(type, stored.data(), q.bytes.data() + r * row, cols);  // the device's block order
    }
    return q;
}

}  // namespace kiln::test
