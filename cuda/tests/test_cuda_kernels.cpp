// Each matrix and element kernel of the CUDA backend against the CPU reference (formats/quant's
// dequantizers, double-precision sums), on random data of odd sizes.
#include <cmath>
#include <vector>

#include "gpu_or_skip.hpp"
#include "kiln/cuda/kernels_host.hpp"
#include "kiln/formats/model_config.hpp"
#include "kiln/quant/quant.hpp"
#include "kiln/runtime/moe_routing.hpp"
#include "kiln/runtime/rope.hpp"
#include "test_data.hpp"

namespace kiln::test {
namespace {

// Columns per type: plain float rows end mid-unit on purpose (70); block types take whole blocks.
size_t cols_for(tensor_type type) {
    switch (type) {
        case tensor_type::q4_k: return 512;
        case tensor_type::q8_0:
        case tensor_type::q4_0: return 288;  // one grouped run of 8 blocks and a whole block after it
        default: return 70;
    }
}

const tensor_type all_types[] = {tensor_type::f32, tensor_type::f16, tensor_type::bf16,
                                 tensor_type::q8_0, tensor_type::q4_0, tensor_type::q4_k};

}  // namespace

// Tolerance: fp32 accumulation in another order than the double reference, so relative to the
// sum of |w||x| (the size of the rounding errors), 1e-5 of it.
TEST_CASE("cuda matvec and gemm match the dequantized reference for every weight type") {
    if (!gpu_or_skip()) return;
    for (tensor_type type : all_types) {
        const size_t rows = 37, cols = cols_for(type);
        const quantized w = quantize(type, gaussian(rows * cols, 1), rows, cols);
        for (size_t n : {size_t(1), size_t(5), size_t(70)}) {  // matvec; one GEMM tile; two token tiles
            CAPTURE(type_name(type));
            CAPTURE(n);
            const std::vector<float> x = gaussian(n * cols, 2);
            const std::vector<float> y = cuda::host::matmul(type, w.bytes.data(), rows, cols, x.data(), n);
            REQUIRE(y.size() == n * rows);
            double worst = 0;
            for (size_t t = 0; t < n; ++t)
                for (size_t r = 0; r < rows; ++r) {
                    double sum = 0, magnitude = 0;
                    for (size_t c = 0; c < cols; ++c) {
                        sum += double(w.values[r * cols + c]) * x[t * cols + c];
                        magnitude += std::abs(double(w.values[r * cols + c]) * x[t * cols + c]);
                    }
                    worst = std::max(worst, std::abs(y[t * rows + r] - sum) / (magnitude + 1e-30));
                }
            CHECK(worst < 1e-5);
        }
    }
}

TEST_CASE("cuda embedding rows equal the reference dequantizer's") {
    if (!gpu_or_skip()) return;
    for (tensor_type type : all_types) {
        CAPTURE(type_name(type));
        const size_t rows = 11, cols = cols_for(type);
        const quantized table = quantize(type, gaussian(rows * cols, 3), rows, cols);
        const std::vector<int32_t> tokens = {10, 0, 3, 3};
        const std::vector<float> out = cuda::host::embed(type, table.bytes.data(), rows, cols, tokens);
        for (size_t t = 0; t < tokens.size(); ++t)
            for (size_t c = 0; c < cols; ++c)
                CHECK(out[t * cols + c] == doctest::Approx(table.values[size_t(tokens[t]) * cols + c]).epsilon(1e-6));
    }
}

TEST_CASE("cuda rmsnorm, swiglu and the f16 store match the CPU formulas") {
    if (!gpu_or_skip()) return;
    const size_t dim = 333, n = 3;
    const std::vector<float> x = gaussian(n * dim, 4, 3.0f), weight = gaussian(dim, 5);
    const std::vector<float> y = cuda::host::rmsnorm(x, weight, 1e-5f);
    for (size_t t = 0; t < n; ++t) {
        double sum = 0;
        for (size_t i = 0; i < dim; ++i) sum += double(x[t * dim + i]) * x[t * dim + i];
        const double inv = 1.0 / std::sqrt(sum / double(dim) + 1e-5);
        for (size_t i = 0; i < dim; ++i)
            CHECK(y[t * dim + i] == doctest::Approx(x[t * dim + i] * inv * weight[i]).epsilon(1e-5));
    }

    const std::vector<float> gate = gaussian(1001, 6, 4.0f), up = gaussian(1001, 7);
    const std::vector<float> s = cuda::host::swiglu(gate, up);
    for (size_t i = 0; i < gate.size(); ++i)
        CHECK(s[i] == doctest::Approx(gate[i] / (1.0 + std::exp(-double(gate[i]))) * up[i]).epsilon(1e-5));

    std::vector<float> values = gaussian(257, 8, 100.0f);
    values.push_back(70000.0f);  // past f16's range: infinity, as quant::f32_to_f16 gives
    values.push_back(1e-6f);     // subnormal in f16
    const std::vector<uint16_t> bits = cuda::host::to_f16(values);
    for (size_t i = 0; i < values.size(); ++i) CHECK(bits[i] == quant::f32_to_f16(values[i]));
}

TEST_CASE("cuda rope matches the reference rotation, interleaved and neox") {
    if (!gpu_or_skip()) return;
    llama_config c;
    c.head_dim = 64;
    c.rope_theta = 500000.0;
    const size_t heads = 3, half = c.head_dim / 2, n = 4;
    const int32_t pos = 1000;
    std::vector<float> cos((pos + n) * half), sin((pos + n) * half);
    for (size_t p = 0; p < pos + n; ++p) rope_angles_for(c, p, cos.data() + p * half, sin.data() + p * half);
    const std::vector<float> x = gaussian(n * heads * c.head_dim, 9);
    for (bool neox : {false, true}) {
        CAPTURE(neox);
        const std::vector<float> y = cuda::host::rope(x, heads, c.head_dim, cos, sin, pos, neox);
        for (size_t t = 0; t < n; ++t)
            for (size_t h = 0; h < heads; ++h)
                for (size_t i = 0; i < half; ++i) {
                    const size_t base = (t * heads + h) * c.head_dim;
                    const size_t a = base + (neox ? i : 2 * i), b = base + (neox ? i + half : 2 * i + 1);
                    const size_t at = (pos + t) * half + i;
                    CHECK(y[a] == doctest::Approx(x[a] * cos[at] - x[b] * sin[at]).epsilon(1e-5));
                    CHECK(y[b] == doctest::Approx(x[a] * sin[at] + x[b] * cos[at]).epsilon(1e-5));
                }
    }
}

// The same experts as the CPU routing (ids exactly: random logits leave no near ties), weights
// within 1e-5 relative (the CPU sums the softmax in double).
TEST_CASE("cuda MoE routing picks the CPU's experts with the same weights") {
    if (!gpu_or_skip()) return;
    struct routing_case {
        size_t n_experts, top_k;
        bool normalize;
        float scale;
    };
    for (const routing_case& c : {routing_case{64, 6, false, 1.0f}, routing_case{8, 2, true, 1.0f},
                                  routing_case{160, 6, false, 16.0f}, routing_case{256, 8, true, 2.5f},
                                  routing_case{37, 1, true, 1.0f}}) {
        CAPTURE(c.n_experts);
        CAPTURE(c.top_k);
        const size_t n = 9;
        std::vector<float> logits = gaussian(n * c.n_experts, 11, 2.0f);
        logits[3] = logits[5];  // an exact tie: the lower index goes first on both sides
        std::vector<int32_t> ids;
        std::vector<float> weights;
        cuda::host::route_experts(logits, c.n_experts, c.top_k, c.normalize, c.scale, ids, weights);
        const moe_routing r{c.n_experts, c.top_k, c.normalize, c.scale};
        std::vector<float> probs(c.n_experts), want_w(c.top_k);
        std::vector<int32_t> want_ids(c.top_k);
        for (size_t t = 0; t < n; ++t) {
            route_token(r, logits.data() + t * c.n_experts, probs.data(), want_ids.data(), want_w.data());
            for (size_t k = 0; k < c.top_k; ++k) {
                CHECK(ids[t * c.top_k + k] == want_ids[k]);
                CHECK(weights[t * c.top_k + k] == doctest::Approx(want_w[k]).epsilon(1e-5));
            }
        }
    }
}

}  // namespace kiln::test
