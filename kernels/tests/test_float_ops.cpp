// Float kernels (dot, rmsnorm, rope, swiglu, softmax, add, scale) on every ISA: the scalar
// table against a double-precision reference, every other table against the scalar one.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kiln/kernels/kernels.hpp"
#include "test_util.hpp"

using namespace kiln;
using kernels::kernel_table;

namespace {

const size_t sizes[] = {1, 3, 7, 8, 9, 16, 31, 33, 64, 255, 4097};

const kernel_table& scalar() { return *kernels::find("scalar"); }

}  // namespace

TEST_CASE("dot matches double reference and scalar") {
    for (size_t n : sizes) {
        const auto a = test::gaussian(n, 1), b = test::gaussian(n, 2);
        double ref = 0, mag = 0;
        for (size_t i = 0; i < n; ++i) ref += double(a[i]) * b[i], mag += std::fabs(double(a[i]) * b[i]);
        const float scalar_result = scalar().dot(a.data(), b.data(), n);
        for (const kernel_table* t : kernels::available()) {
            CAPTURE(std::string(t->isa));
            CAPTURE(n);
            const float got = t->dot(a.data(), b.data(), n);
            // Float sums of n terms in a different order: a few e-6 of the absolute mass.
            CHECK(std::fabs(got - ref) <= 3e-5 * mag + 1e-7);
            CHECK(std::fabs(got - scalar_result) <= 3e-5 * mag + 1e-7);
        }
    }
}

TEST_CASE("rmsnorm matches double reference") {
    for (size_t n : sizes) {
        const auto x = test::gaussian(n, 3, 2.0f), w = test::gaussian(n, 4);
        const float eps = 1e-5f;
        double ss = 0;
        for (float v : x) ss += double(v) * v;
        const double inv = 1.0 / std::sqrt(ss / double(n) + eps);
        for (const kernel_table* t : kernels::available()) {
            CAPTURE(std::string(t->isa));
            CAPTURE(n);
            std::vector<float> out(n);
            t->rmsnorm(x.data(), w.data(), eps, out.data(), n);
            for (size_t i = 0; i < n; ++i) REQUIRE(test::close(out[i], x[i] * inv * w[i], 2e-5, 1e-6));
            std::vector<float> in_place = x;  // aliasing out == x is allowed
            t->rmsnorm(in_place.data(), w.data(), eps, in_place.data(), n);
            CHECK(in_place == out);
        }
    }
}

TEST_CASE("rope rotates interleaved and neox pairs like the reference") {
    for (size_t head_dim : {2u, 8u, 64u, 96u, 128u}) {
        for (auto style : {kernels::rope_style::interleaved, kernels::rope_style::neox}) {
            const size_t n_heads = 3, pos = 17;
            std::vector<float> cos(head_dim / 2), sin(head_dim / 2);
            kernels::rope_angles(pos, head_dim, 10000.0, cos.data(), sin.data());
            const auto x = test::gaussian(n_heads * head_dim, 5);
            std::vector<float> expect = x;
            for (size_t h = 0; h < n_heads; ++h)
                for (size_t i = 0; i < head_dim / 2; ++i) {
                    const double angle = double(pos) * std::pow(10000.0, -2.0 * double(i) / double(head_dim));
                    const size_t p = h * head_dim + (style == kernels::rope_style::neox ? i : 2 * i);
                    const size_t q = p + (style == kernels::rope_style::neox ? head_dim / 2 : 1);
                    expect[p] = float(x[p] * std::cos(angle) - x[q] * std::sin(angle));
                    expect[q] = float(x[p] * std::sin(angle) + x[q] * std::cos(angle));
                }
            for (const kernel_table* t : kernels::available()) {
                CAPTURE(std::string(t->isa));
                CAPTURE(head_dim);
                std::vector<float> got = x;
                t->rope(got.data(), n_heads, head_dim, cos.data(), sin.data(), style);
                for (size_t i = 0; i < got.size(); ++i) REQUIRE(test::close(got[i], expect[i], 1e-5, 1e-5));
            }
        }
    }
}

TEST_CASE("swiglu matches double reference") {
    for (size_t n : sizes) {
        const auto g = test::gaussian(n, 6, 4.0f), u = test::gaussian(n, 7);
        for (const kernel_table* t : kernels::available()) {
            CAPTURE(std::string(t->isa));
            CAPTURE(n);
            std::vector<float> out(n);
            t->swiglu(g.data(), u.data(), out.data(), n);
            for (size_t i = 0; i < n; ++i) {
                const double expect = double(g[i]) / (1.0 + std::exp(-double(g[i]))) * u[i];
                REQUIRE(test::close(out[i], expect, 1e-5, 1e-7));
            }
        }
    }
}

TEST_CASE("softmax is normalised, safe for large inputs and masks -inf") {
    for (size_t n : sizes) {
        auto x = test::gaussian(n, 8, 10.0f);
        x[0] += 1000.0f;  // would overflow exp without the max shift
        if (n > 2) x[2] = -std::numeric_limits<float>::infinity();
        double max = x[0];
        for (float v : x) max = std::fmax(max, v);
        std::vector<double> expect(n);
        double sum = 0;
        for (size_t i = 0; i < n; ++i) sum += (expect[i] = std::exp(double(x[i]) - max));
        for (const kernel_table* t : kernels::available()) {
            CAPTURE(std::string(t->isa));
            CAPTURE(n);
            std::vector<float> got = x;
            t->softmax(got.data(), n);
            double total = 0;
            for (size_t i = 0; i < n; ++i) {
                REQUIRE(test::close(got[i], expect[i] / sum, 1e-5, 1e-7));
                total += got[i];
            }
            CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
            if (n > 2) CHECK(got[2] == 0.0f);
        }
    }
}

TEST_CASE("add and scale are exact") {
    for (size_t n : sizes) {
        const auto a = test::gaussian(n, 9), b = test::gaussian(n, 10);
        for (const kernel_table* t : kernels::available()) {
            CAPTURE(std::string(t->isa));
            CAPTURE(n);
            std::vector<float> sum(n), scaled(n);
            t->add(a.data(), b.data(), sum.data(), n);
            t->scale(a.data(), 0.37f, scaled.data(), n);
            for (size_t i = 0; i < n; ++i) {
                REQUIRE(sum[i] == a[i] + b[i]);
                REQUIRE(scaled[i] == a[i] * 0.37f);
            }
        }
    }
}
