// Shared helpers of the kernel tests: seeded random data and tolerance checks.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kiln/kernels/kernels.hpp"

namespace kiln::test {

inline std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, sigma);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

inline std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// |a - b| <= abs_tol + rel_tol * |b|
inline bool close(double a, double b, double rel_tol, double abs_tol) {
    return std::fabs(a - b) <= abs_tol + rel_tol * std::fabs(b);
}

}  // namespace kiln::test
