// Inputs the CUDA kernel tests share: weights quantized as a .kiln file stores them, re-ordered
// into the device's block order, with the values they hold.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/formats/tensor_type.hpp"
#include "kiln/quant/quant.hpp"
#include "test_util.hpp"  // the kernel tests' gaussian()

namespace kiln::test {

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
