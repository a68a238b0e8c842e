// Reference quantizers: quantize -> dequantize error per type within stated bounds, q4_k beats
// q4_0 on gaussian data, the dispatcher refuses rows that are not whole blocks.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kiln/quant/half.hpp"
#include "kiln/quant/quant.hpp"
#include "test_util.hpp"

using namespace kiln;

namespace {

size_t bytes_for(tensor_type type, size_t n) {
    switch (type) {
        case tensor_type::f32: return 4 * n;
        case tensor_type::f16:
        case tensor_type::bf16: return 2 * n;
        case tensor_type::q8_0: return n / 32 * sizeof(quant::q8_0_block);
        case tensor_type::q4_0: return n / 32 * sizeof(quant::q4_0_block);
        case tensor_type::q4_k: return n / 256 * sizeof(quant::q4_k_block);
    }
    return 0;
}

std::vector<float> round_trip(tensor_type type, const std::vector<float>& x) {
    std::vector<uint8_t> packed(bytes_for(type, x.size()));
    std::vector<float> back(x.size());
    quant::quantize_row(type, x.data(), packed.data(), x.size());
    quant::dequantize_row(type, packed.data(), back.data(), x.size());
    return back;
}

// RMS error divided by RMS of the data.
double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
    double err = 0, ref = 0;
    for (size_t i = 0; i < x.size(); ++i) err += double(x[i] - y[i]) * (x[i] - y[i]), ref += double(x[i]) * x[i];
    return std::sqrt(err / ref);
}

}  // namespace

TEST_CASE("float types round trip within their precision") {
    auto x = test::gaussian(4096, 1, 3.0f);
    CHECK(round_trip(tensor_type::f32, x) == x);
    const auto h = round_trip(tensor_type::f16, x);
    const auto b = round_trip(tensor_type::bf16, x);
    for (size_t i = 0; i < x.size(); ++i) {
        // half an ulp: 2^-11 relative for f16 normals (plus the subnormal step), 2^-8 for bf16
        REQUIRE(std::fabs(h[i] - x[i]) <= std::ldexp(std::fabs(x[i]), -11) + std::ldexp(1.0f, -25));
        REQUIRE(std::fabs(b[i] - x[i]) <= std::ldexp(std::fabs(x[i]), -8));
    }
}

TEST_CASE("q8_0: the searched scale never loses to amax / 127 and stays near half a step") {
    auto x = test::gaussian(32 * 512, 2, 2.0f);
    x[5] = 0.0f;
    for (size_t i = 64; i < 96; ++i) x[i] = 0.0f;  // an all-zero block
    const auto y = round_trip(tensor_type::q8_0, x);
    double searched_total = 0, plain_total = 0;
    for (size_t b = 0; b < x.size() / 32; ++b) {
        const float* xb = x.data() + b * 32;
        float amax = 0;
        for (size_t i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
        // plain rounding with the f16 scale amax / 127, written out here as the baseline
        const float d = quant::f16_to_f32(quant::f32_to_f16(amax / 127.0f));
        double searched = 0, plain = 0;
        for (size_t i = 0; i < 32; ++i) {
            const float q = d != 0.0f ? std::fmax(-127.0f, std::fmin(127.0f, std::nearbyint(xb[i] / d))) : 0.0f;
            plain += double(xb[i] - d * q) * double(xb[i] - d * q);
            const double e = double(xb[i]) - y[b * 32 + i];
            searched += e * e;
            // the scale is at most ~5% above amax / 127 and may clip the extreme by under 1%
            REQUIRE(std::fabs(e) <= 0.7 * amax / 127.0 * 1.06 + 1e-12);
        }
        REQUIRE(searched <= plain * (1 + 1e-6) + 1e-30);
        searched_total += searched, plain_total += plain;
    }
    MESSAGE("q8_0 squared error, searched / plain scale: " << searched_total / plain_total);
    CHECK(searched_total < 0.9 * plain_total);
    CHECK(relative_rms_error(x, y) < 0.01);
}

TEST_CASE("q4_0 and q4_k relative rms error on gaussian data") {
    const auto x = test::gaussian(256 * 256, 3, 0.02f);
    const double e40 = relative_rms_error(x, round_trip(tensor_type::q4_0, x));
    const double e4k = relative_rms_error(x, round_trip(tensor_type::q4_k, x));
    MESSAGE("relative rms error: q4_0 " << e40 << ", q4_k " << e4k);
    CHECK(e40 < 0.12);
    CHECK(e4k < 0.12);
    CHECK(e4k < e40);
}

TEST_CASE("q4_k beats q4_0 on shifted data where the min pays off") {
    auto x = test::gaussian(256 * 64, 4, 1.0f);
    for (auto& v : x) v += 2.0f;
    const double e40 = relative_rms_error(x, round_trip(tensor_type::q4_0, x));
    const double e4k = relative_rms_error(x, round_trip(tensor_type::q4_k, x));
    MESSAGE("shifted: q4_0 " << e40 << ", q4_k " << e4k);
    CHECK(e4k < 0.6 * e40);
}

TEST_CASE("block quantizers reproduce constant and zero blocks") {
    std::vector<float> zeros(256, 0.0f);
    for (auto type : {tensor_type::q8_0, tensor_type::q4_0, tensor_type::q4_k}) CHECK(round_trip(type, zeros) == zeros);
    std::vector<float> ramp(256);
    for (size_t i = 0; i < 256; ++i) ramp[i] = float(i % 16) * 0.25f;  // exactly 16 levels
    const auto y = round_trip(tensor_type::q4_k, ramp);
    CHECK(relative_rms_error(ramp, y) < 1e-3);
}

TEST_CASE("quantize_row refuses partial blocks") {
    std::vector<float> x(40, 1.0f);
    std::vector<uint8_t> out(1024);
    CHECK_THROWS_AS(quant::quantize_row(tensor_type::q8_0, x.data(), out.data(), 40), std::invalid_argument);
    CHECK_THROWS_AS(quant::quantize_row(tensor_type::q4_k, x.data(), out.data(), 32), std::invalid_argument);
    CHECK_NOTHROW(quant::quantize_row(tensor_type::f16, x.data(), out.data(), 40));
}

TEST_CASE("q8_0 and q4_0 rows are grouped: a run's scales first, then its codes, whole blocks after") {
    // 19 blocks: two runs of 8 (bytes 0..543 for q8_0), then 3 whole blocks.
    const size_t cols = 19 * 32;
    const auto x = test::gaussian(cols, 11, 1.0f);
    std::vector<uint8_t> row(cols / 32 * sizeof(quant::q8_0_block));
    quant::quantize_row(tensor_type::q8_0, x.data(), row.data(), cols);
    std::vector<float> base(cols), changed(cols);
    quant::dequantize_row(tensor_type::q8_0, row.data(), base.data(), cols);
    // Which elements move when one byte changes, checked against the layout written out by hand.
    auto moved = [&](size_t byte) {
        auto r = row;
        r[byte] ^= 0x40;
        quant::dequantize_row(tensor_type::q8_0, r.data(), changed.data(), cols);
        std::vector<size_t> out;
        for (size_t i = 0; i < cols; ++i)
            if (changed[i] != base[i]) out.push_back(i);
        return out;
    };
    CHECK(moved(272 + 2 * 3 + 1).size() == 32);                          // run 1's scale of its block 3 (block 11)
    CHECK(moved(272 + 2 * 3 + 1).front() == 11 * 32);
    CHECK(moved(272 + 16 + 32 * 5 + 7) == std::vector<size_t>{13 * 32 + 7});  // run 1, block 5's code 7
    CHECK(moved(544 + 34 * 1 + 2 + 9) == std::vector<size_t>{17 * 32 + 9});   // whole block 17, code 9
    std::vector<uint8_t> row4(cols / 32 * sizeof(quant::q4_0_block));
    quant::quantize_row(tensor_type::q4_0, x.data(), row4.data(), cols);
    const auto blk = quant::load_grouped<quant::q4_0_block>(row4.data(), cols / 32, 10);
    CHECK(std::memcmp(&blk.d, row4.data() + 144 + 2 * 2, 2) == 0);
    CHECK(std::memcmp(blk.q, row4.data() + 144 + 16 + 16 * 2, 16) == 0);
    // ungroup_row gives whole blocks in order, as GGUF stores them.
    std::vector<quant::q4_0_block> plain(cols / 32);
    quant::ungroup_row(tensor_type::q4_0, row4.data(), plain.data(), cols);
    for (size_t b = 0; b < cols / 32; ++b) {
        const auto g = quant::load_grouped<quant::q4_0_block>(row4.data(), cols / 32, b);
        CHECK(std::memcmp(&g, &plain[b], sizeof(g)) == 0);
    }
}
