// The deepseek2 kernels of the CUDA backend against CPU formulas: the per-head and per-expert
// matrix-vector products, the expert combine, the latent cache store and the query's rope tail
// (YaRN tables from deepseek2_rope_angles, as the model uses them), and latent attention
// against a double softmax over the same f16 cache.
#include <algorithm>
#include <cmath>
#include <vector>

#include "gpu_or_skip.hpp"
#include "kiln/cuda/kernels_host.hpp"
#include "kiln/quant/half.hpp"
#include "kiln/quant/quant.hpp"
#include "kiln/runtime/deepseek2_rope.hpp"
#include "test_data.hpp"

namespace kiln::test {
namespace {

// A deepseek2 shape with YaRN, for angle tables.
deepseek2_config yarn_config(size_t rope) {
    deepseek2_config c;
    c.qk_nope_head_dim = 16;
    c.qk_rope_head_dim = rope;
    c.rope_theta = 10000.0;
    c.yarn = {4.0, 64, 32.0, 1.0, 1.0, 0.707};
    return c;
}

void angle_tables(const deepseek2_config& c, size_t positions, std::vector<float>& cos, std::vector<float>& sin) {
    const size_t half = c.qk_rope_head_dim / 2;
    cos.assign(positions * half, 0.0f);
    sin.assign(positions * half, 0.0f);
    for (size_t p = 0; p < positions; ++p) deepseek2_rope_angles(c, p, cos.data() + p * half, sin.data() + p * half);
}

// |got - want| <= 1e-5 of the sum of |w||x| (the size of fp32 rounding), as the matvec test.
void check_products(const std::vector<float>& got, const std::vector<double>& want, const std::vector<double>& size) {
    REQUIRE(got.size() == want.size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]) / (size[i] + 1e-30));
    CHECK(worst < 1e-5);
}

}  // namespace

TEST_CASE("cuda per-head and per-expert matvecs match the dequantized reference") {
    if (!gpu_or_skip()) return;
    for (tensor_type type : {tensor_type::f32, tensor_type::f16, tensor_type::bf16, tensor_type::q8_0,
                             tensor_type::q4_0, tensor_type::q4_k}) {
        CAPTURE(type_name(type));
        const size_t cols = type == tensor_type::q4_k ? 256 : type == tensor_type::q8_0 || type == tensor_type::q4_0 ? 64 : 40;
        const size_t count = 5, rows = 19;
        const quantized w = quantize(type, gaussian(count * rows * cols, 21), count * rows, cols);

        // Heads: x [n][heads][cols] -> y [n][heads][rows].
        const size_t n = 3;
        const std::vector<float> x = gaussian(n * count * cols, 22);
        std::vector<double> want(n * count * rows), size(want.size());
        for (size_t t = 0; t < n; ++t)
            for (size_t h = 0; h < count; ++h)
                for (size_t r = 0; r < rows; ++r) {
                    double sum = 0, magnitude = 0;
                    for (size_t c = 0; c < cols; ++c) {
                        const double p = double(w.values[(h * rows + r) * cols + c]) * x[(t * count + h) * cols + c];
                        sum += p;
                        magnitude += std::abs(p);
                    }
                    want[(t * count + h) * rows + r] = sum;
                    size[(t * count + h) * rows + r] = magnitude;
                }
        check_products(cuda::host::head_matvec(type, w.bytes.data(), count, rows, cols, x), want, size);

        // Experts: token t's top_k ids pick matrices; x [n][cols] -> y [n * top_k][rows].
        const size_t top_k = 2;
        const std::vector<int32_t> ids = {4, 0, 2, 3, 1, 4};
        const std::vector<float> xe = gaussian(n * cols, 23);
        std::vector<double> want_e(n * top_k * rows), size_e(want_e.size());
        for (size_t b = 0; b < n * top_k; ++b)
            for (size_t r = 0; r < rows; ++r) {
                double sum = 0, magnitude = 0;
                for (size_t c = 0; c < cols; ++c) {
                    const double p = double(w.values[(size_t(ids[b]) * rows + r) * cols + c]) * xe[(b / top_k) * cols + c];
                    sum += p;
                    magnitude += std::abs(p);
                }
                want_e[b * rows + r] = sum;
                size_e[b * rows + r] = magnitude;
            }
        check_products(cuda::host::expert_matvec(type, w.bytes.data(), count, rows, cols, ids, top_k, xe), want_e,
                       size_e);
    }
}

TEST_CASE("cuda MoE combine adds the weighted expert outputs to the residual") {
    if (!gpu_or_skip()) return;
    const size_t n = 4, top_k = 3, dim = 300;
    const std::vector<int32_t> ids = {5, 1, 3, 0, 7, 2, 6, 4, 1, 2, 3, 0};
    const std::vector<float> x = gaussian(n * dim, 31), out = gaussian(n * top_k * dim, 32),
                             weights = gaussian(n * top_k, 33, 0.5f);
    const std::vector<float> got = cuda::host::moe_combine(x, out, ids, weights, top_k);
    REQUIRE(got.size() == x.size());
    for (size_t t = 0; t < n; ++t)
        for (size_t d = 0; d < dim; ++d) {
            double want = 0;
            for (size_t j = 0; j < top_k; ++j) want += double(weights[t * top_k + j]) * out[(t * top_k + j) * dim + d];
            CHECK(got[t * dim + d] == doctest::Approx(double(x[t * dim + d]) + want).epsilon(1e-5).scale(1.0));
        }
}

// The stored f16 values against the float formula rounded by quant::f32_to_f16: equal, or one
// f16 step apart where the float results straddle a rounding boundary (2^-10 relative).
TEST_CASE("cuda latent store and query rope tail match the CPU formulas with YaRN angles") {
    if (!gpu_or_skip()) return;
    const size_t lora = 48, rope = 8, width = lora + rope, half = rope / 2, n = 5, heads = 3, nope = 16;
    const int32_t pos = 37;
    const float eps = 1e-6f;
    const deepseek2_config c = yarn_config(rope);
    std::vector<float> cos, sin;
    angle_tables(c, size_t(pos) + n, cos, sin);

    const std::vector<float> kv = gaussian(n * width, 41, 2.0f), norm = gaussian(lora, 42);
    const std::vector<uint16_t> cache = cuda::host::store_latent(kv, lora, rope, norm, eps, cos, sin, pos);
    REQUIRE(cache.size() == (size_t(pos) + n) * width);
    for (size_t i = 0; i < size_t(pos) * width; ++i) CHECK(cache[i] == 0);  // earlier positions untouched
    for (size_t t = 0; t < n; ++t) {
        const float* row = kv.data() + t * width;
        double sum = 0;
        for (size_t i = 0; i < lora; ++i) sum += double(row[i]) * row[i];
        const double inv = 1.0 / std::sqrt(sum / double(lora) + eps);
        std::vector<double> want(width);
        for (size_t i = 0; i < lora; ++i) want[i] = row[i] * inv * norm[i];
        const size_t at = (size_t(pos) + t) * half;
        for (size_t p = 0; p < half; ++p) {
            const double x0 = row[lora + 2 * p], x1 = row[lora + 2 * p + 1];
            want[lora + 2 * p] = x0 * cos[at + p] - x1 * sin[at + p];
            want[lora + 2 * p + 1] = x0 * sin[at + p] + x1 * cos[at + p];
        }
        for (size_t i = 0; i < width; ++i) {
            const double got = quant::f16_to_f32(cache[(size_t(pos) + t) * width + i]);
            CHECK(std::abs(got - want[i]) <= std::abs(want[i]) * (1.0 / 1024) + 1e-7);
        }
    }

    const std::vector<float> q = gaussian(n * heads * (nope + rope), 43);
    const std::vector<float> qa = cuda::host::rope_query_tail(q, heads, nope, rope, lora, cos, sin, pos);
    REQUIRE(qa.size() == n * heads * width);
    for (size_t t = 0; t < n; ++t)
        for (size_t h = 0; h < heads; ++h) {
            const float* src = q.data() + (t * heads + h) * (nope + rope) + nope;
            const float* dst = qa.data() + (t * heads + h) * width;
            for (size_t i = 0; i < lora; ++i) CHECK(dst[i] == 0.0f);  // W_UK's slots: not written here
            const size_t at = (size_t(pos) + t) * half;
            for (size_t p = 0; p < half; ++p) {
                CHECK(dst[lora + 2 * p] ==
                      doctest::Approx(src[2 * p] * cos[at + p] - src[2 * p + 1] * sin[at + p]).epsilon(1e-5));
                CHECK(dst[lora + 2 * p + 1] ==
                      doctest::Approx(src[2 * p] * sin[at + p] + src[2 * p + 1] * cos[at + p]).epsilon(1e-5));
            }
        }
}

// Tolerance 2e-5 absolute on outputs of size ~1 (values N(0,1) rounded to f16), as the GQA
// attention test: fp32 online softmax against a double one.
TEST_CASE("cuda latent attention matches a double softmax over the f16 latent cache") {
    if (!gpu_or_skip()) return;
    struct latent_case {
        size_t heads, lora, rope, n, pos, splits;
    };
    for (const latent_case& lc : {latent_case{4, 32, 8, 1, 0, 1}, latent_case{4, 32, 8, 13, 0, 1},
                                  latent_case{5, 48, 8, 9, 70, 1},   // blocks of four rows span tokens
                                  latent_case{3, 64, 16, 1, 100, 3}, latent_case{16, 512, 64, 1, 200, 4},
                                  latent_case{16, 512, 64, 7, 33, 1}, latent_case{2, 40, 8, 1, 5, 8}}) {
        CAPTURE(lc.heads);
        CAPTURE(lc.lora);
        CAPTURE(lc.n);
        CAPTURE(lc.pos);
        CAPTURE(lc.splits);
        const size_t width = lc.lora + lc.rope, keys = lc.pos + lc.n;
        const float scale = float(1.0 / std::sqrt(double(width)));
        const std::vector<float> q = gaussian(lc.n * lc.heads * width, 51);
        const std::vector<float> cache_values = gaussian(keys * width, 52);
        std::vector<uint16_t> cache(cache_values.size());
        for (size_t i = 0; i < cache.size(); ++i) cache[i] = quant::f32_to_f16(cache_values[i]);
        const std::vector<float> got =
            cuda::host::latent_attention(q, lc.heads, lc.lora, lc.rope, scale, cache, int32_t(lc.pos), lc.splits);
        REQUIRE(got.size() == lc.n * lc.heads * lc.lora);
        double worst = 0;
        for (size_t t = 0; t < lc.n; ++t)
            for (size_t h = 0; h < lc.heads; ++h) {
                const float* qr = q.data() + (t * lc.heads + h) * width;
                const size_t visible = lc.pos + t + 1;
                std::vector<double> s(visible);
                double max = -1e300;
                for (size_t j = 0; j < visible; ++j) {
                    double dot = 0;
                    for (size_t d = 0; d < width; ++d) dot += double(qr[d]) * quant::f16_to_f32(cache[j * width + d]);
                    s[j] = scale * dot;
                    max = std::max(max, s[j]);
                }
                double sum = 0;
                for (double& v : s) sum += (v = std::exp(v - max));
                for (size_t d = 0; d < lc.lora; ++d) {
                    double acc = 0;
                    for (size_t j = 0; j < visible; ++j) acc += s[j] * quant::f16_to_f32(cache[j * width + d]);
                    worst = std::max(worst, std::abs(got[(t * lc.heads + h) * lc.lora + d] - acc / sum));
                }
            }
        CHECK(worst < 2e-5);
    }
}

}  // namespace kiln::test
