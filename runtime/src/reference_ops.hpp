// Internal: the plain loops both f32 reference passes (reference_llama, reference_deepseek2) are
// built from: written for clarity, not speed, since they are the oracle the fast paths are
// checked against.
#pragma once
#include <cmath>
#include <cstddef>
#include <vector>

#include "kiln/runtime/model.hpp"

namespace kiln::reference {

// out[i] = x[i] / rms(x) * weight[i], the sum of squares in double; out may alias x.
inline void rmsnorm(float* out, const float* x, const float* weight, size_t n, double eps) {
    double sum_squares = 0;
    for (size_t i = 0; i < n; ++i) sum_squares += double(x[i]) * x[i];
    const float inv_rms = float(1.0 / std::sqrt(sum_squares / double(n) + eps));
    for (size_t i = 0; i < n; ++i) out[i] = x[i] * inv_rms * weight[i];
}

// y = W x for W of [rows, cols], row-major.
inline void matvec(float* y, const float* w, const float* x, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; ++r) {
        const float* row = w + r * cols;
        float sum = 0;
        for (size_t c = 0; c < cols; ++c) sum += row[c] * x[c];
        y[r] = sum;
    }
}

// An optional tensor as f32 values, empty when the model lacks it.
inline std::vector<float> load_or_empty(const tensor_view* t) {
    return t ? tensor_to_f32(*t) : std::vector<float>{};
}

}  // namespace kiln::reference
