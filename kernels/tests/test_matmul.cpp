// Matrix kernels of every weight type on every ISA: activation quantization bit-identical to
// the scalar one, scalar matmul against a double-precision dot of the dequantized operands,
// every other ISA against scalar, over odd row counts, token counts and partial row ranges.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kiln/kernels/kernels.hpp"
#include "kiln/quant/quant.hpp"
#include "test_util.hpp"

using namespace kiln;
using kernels::kernel_table;

namespace {

size_t row_bytes_of(tensor_type type, size_t cols) {
    switch (type) {
        case tensor_type::f32: return 4 * cols;
        case tensor_type::f16:
        case tensor_type::bf16: return 2 * cols;
        case tensor_type::q8_0: return cols / 32 * sizeof(quant::q8_0_block);
        case tensor_type::q4_0: return cols / 32 * sizeof(quant::q4_0_block);
        case tensor_type::q4_k: return cols / 256 * sizeof(quant::q4_k_block);
    }
    return 0;
}

const kernel_table& scalar() { return *kernels::find("scalar"); }

struct problem {
    tensor_type type;
    size_t rows, cols, tokens;
    std::vector<uint8_t> weights;
    std::vector<float> dequantized;  // rows x cols
    std::vector<float> x;            // tokens x cols
    std::vector<uint8_t> xq;         // quantized activations (block types)
    std::vector<float> x_used;       // the activations the kernel really sees, dequantized

    problem(tensor_type t, size_t r, size_t c, size_t n, uint32_t seed)
        : type(t), rows(r), cols(c), tokens(n), weights(r * row_bytes_of(t, c)), dequantized(r * c) {
        const auto w = test::gaussian(r * c, seed, 0.05f);
        for (size_t i = 0; i < r; ++i) {
            quant::quantize_row(t, w.data() + i * c, weights.data() + i * row_bytes_of(t, c), c);
            quant::dequantize_row(t, weights.data() + i * row_bytes_of(t, c), dequantized.data() + i * c, c);
        }
        x = test::gaussian(n * c, seed + 1, 1.0f);
        x_used = x;
        if (kernels::uses_quantized_activations(t)) {
            xq.resize(n * kernels::quantized_row_bytes(c));
            scalar().quantize_activations(x.data(), c, c, n, xq.data());
            for (size_t k = 0; k < n; ++k) {
                const auto* rec = xq.data() + k * kernels::quantized_row_bytes(c);
                const auto* q = reinterpret_cast<const int8_t*>(rec);
                const auto* q16 = reinterpret_cast<const int16_t*>(rec + 2 * c);  // after q and q_paired
                const auto* d = reinterpret_cast<const float*>(rec + 4 * c);
                for (size_t i = 0; i < c; ++i) {
                    // q8_0 weights multiply the 16-bit copy (scale d / 256), 4-bit weights the int8 one
                    x_used[k * c + i] = t == tensor_type::q8_0 ? float(q16[i]) * (d[i / 32] / 256.0f)
                                                               : float(q[i]) * d[i / 32];
                    const float step = t == tensor_type::q8_0 ? d[i / 32] / 256.0f : d[i / 32];
                    // half a step, plus the rounding of the reciprocal scale (~32512 * 2^-23 of a step for q16)
                    REQUIRE(std::fabs(x[k * c + i] - x_used[k * c + i]) <= 0.505f * step);
                }
            }
        }
    }
    const void* activations() const { return xq.empty() ? static_cast<const void*>(x.data()) : xq.data(); }

    // Exact dot of what the kernel multiplies, and the absolute mass that bounds rounding.
    void reference(size_t r, size_t t, double& value, double& mass) const {
        value = mass = 0;
        for (size_t c = 0; c < cols; ++c) {
            const double p = double(dequantized[r * cols + c]) * x_used[t * cols + c];
            value += p, mass += std::fabs(p);
        }
    }
};

// A q4 block kernel also carries the offset/min term (8 d_a sum(a), dmin m sum(a)) whose
// partial sums can exceed the dot's own mass: 1e-4 of the mass covers it with margin.
double tolerance(tensor_type type) {
    return (type == tensor_type::q4_0 || type == tensor_type::q4_k) ? 1e-4 : 2e-5;
}

void check_type(tensor_type type, std::initializer_list<size_t> col_counts) {
    const size_t row_counts[] = {1, 3, 7, 33};
    const size_t token_counts[] = {1, 2, 3, 4, 5, 9};
    uint32_t seed = 100;
    for (size_t cols : col_counts)
        for (size_t rows : row_counts)
            for (size_t tokens : token_counts) {
                if (rows == 33 && tokens > 5 && cols > 1024) continue;  // keep qemu runs short
                const problem p(type, rows, cols, tokens, seed++);
                CAPTURE(cols);
                CAPTURE(rows);
                CAPTURE(tokens);
                const double tol = tolerance(type);
                const float sentinel = std::numeric_limits<float>::quiet_NaN();
                std::vector<float> scalar_y(rows * tokens);
                kernels::matmul_for(scalar(), type)(p.weights.data(), 0, rows, cols, p.activations(), tokens,
                                                    scalar_y.data(), rows);
                for (size_t t = 0; t < tokens; ++t)
                    for (size_t r = 0; r < rows; ++r) {
                        double value, mass;
                        p.reference(r, t, value, mass);
                        REQUIRE(std::fabs(scalar_y[t * rows + r] - value) <= tol * mass + 1e-6);
                    }
                for (const kernel_table* table : kernels::available()) {
                    CAPTURE(std::string(table->isa));
                    if (kernels::uses_quantized_activations(type)) {
                        std::vector<uint8_t> xq(p.xq.size());
                        table->quantize_activations(p.x.data(), cols, cols, tokens, xq.data());
                        REQUIRE(xq == p.xq);
                    }
                    // A row range that starts inside the matrix: rows outside keep the sentinel.
                    const size_t begin = rows > 2 ? 1 : 0;
                    const size_t ldy = rows + 3;
                    std::vector<float> y(ldy * tokens, sentinel);
                    kernels::matmul_for(*table, type)(p.weights.data(), begin, rows, cols, p.activations(), tokens,
                                                      y.data(), ldy);
                    for (size_t t = 0; t < tokens; ++t)
                        for (size_t r = 0; r < ldy; ++r) {
                            const float got = y[t * ldy + r];
                            if (r < begin || r >= rows) {
                                REQUIRE(std::isnan(got));
                                continue;
                            }
                            double value, mass;
                            p.reference(r, t, value, mass);
                            REQUIRE(std::fabs(got - scalar_y[t * rows + r]) <= tol * mass + 1e-6);
                        }
                }
            }
}

}  // namespace

TEST_CASE("matmul f32") { check_type(tensor_type::f32, {1, 3, 8, 31, 33, 64, 255, 4097}); }
TEST_CASE("matmul f16") { check_type(tensor_type::f16, {1, 3, 8, 31, 33, 64, 255, 4097}); }
TEST_CASE("matmul bf16") { check_type(tensor_type::bf16, {1, 3, 8, 31, 33, 64, 255, 4097}); }
TEST_CASE("matmul q8_0") { check_type(tensor_type::q8_0, {32, 64, 96, 256, 288, 544, 4096}); }
TEST_CASE("matmul q4_0") { check_type(tensor_type::q4_0, {32, 64, 96, 256, 288, 544, 4096}); }
TEST_CASE("matmul q4_k") { check_type(tensor_type::q4_k, {256, 512, 768, 2304}); }

TEST_CASE("matvec and gemm convenience calls use the active table") {
    const problem p(tensor_type::q4_0, 5, 256, 3, 7);
    std::vector<float> a(5 * 3), b(5 * 3), one(5);
    kernels::gemm_rows(tensor_type::q4_0, p.weights.data(), 0, 5, 256, p.activations(), 3, a.data(), 5);
    kernels::matmul_for(kernels::active(), tensor_type::q4_0)(p.weights.data(), 0, 5, 256, p.activations(), 3,
                                                              b.data(), 5);
    CHECK(a == b);
    kernels::matvec_rows(tensor_type::q4_0, p.weights.data(), 0, 5, 256, p.activations(), one.data());
    for (size_t r = 0; r < 5; ++r) CHECK(one[r] == doctest::Approx(a[r]).epsilon(1e-5));
}
