// GGML block decoders against hand-built blocks: each test packs chosen integer codes and scales
// into a block with an independent, element-by-element packer written from the published layout,
// then checks the decoder returns the values the format's formula gives for those codes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf_dequant.hpp"

using namespace kiln;

namespace {

// binary16 bits of a value that f16 represents exactly (normal numbers and zero only).
uint16_t f16_bits(float x) {
    if (x == 0.0f) return 0;
    uint16_t sign = x < 0 ? 0x8000 : 0;
    int exponent;
    const double fraction = std::frexp(std::fabs(double(x)), &exponent);  // |x| = fraction * 2^exponent, fraction in [0.5, 1)
    const double mantissa = (fraction * 2.0 - 1.0) * 1024.0;
    REQUIRE(mantissa == std::floor(mantissa));
    REQUIRE(exponent - 1 + 15 > 0);
    return uint16_t(sign | ((exponent - 1 + 15) << 10) | int(mantissa));
}

void put_f16(std::vector<uint8_t>& block, size_t at, float x) {
    uint16_t bits = f16_bits(x);
    std::memcpy(block.data() + at, &bits, 2);
}

// Sets `width` bits of byte `index` starting at bit `shift` (the field must be clear).
void put_bits(std::vector<uint8_t>& block, size_t index, int shift, int width, int value) {
    REQUIRE(value >= 0);
    REQUIRE(value < (1 << width));
    block.at(index) = uint8_t(block.at(index) | (value << shift));
}

std::vector<float> decode(ggml_type type, const std::vector<uint8_t>& block, size_t n) {
    std::vector<float> out(n);
    dequantize_ggml(type, std::as_bytes(std::span(block)), out);
    return out;
}

void check_close(const std::vector<float>& got, const std::vector<double>& expected) {
    REQUIRE(got.size() == expected.size());
    double worst = 0;
    size_t worst_at = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double err = std::fabs(double(got[i]) - expected[i]) / std::max(1.0, std::fabs(expected[i]));
        if (err > worst) worst = err, worst_at = i;
    }
    CHECK_MESSAGE(worst < 1e-6, "element " << worst_at << ": got " << got[worst_at] << ", expected " << expected[worst_at]);
}

std::mt19937 rng(12345);
int random_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

const float scales[] = {0.5f, -0.75f, 0.0625f, 1.5f, 0.25f};

}  // namespace

TEST_CASE("gguf dequant: f16 and bf16 conversions are exact") {
    CHECK(gguf_f16_to_f32(0x3C00) == 1.0f);
    CHECK(gguf_f16_to_f32(0xC000) == -2.0f);
    CHECK(gguf_f16_to_f32(0x7BFF) == 65504.0f);
    CHECK(gguf_f16_to_f32(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
    CHECK(gguf_f16_to_f32(0x03FF) == std::ldexp(1023.0f, -24));
    CHECK(std::isinf(gguf_f16_to_f32(0x7C00)));
    CHECK(std::isnan(gguf_f16_to_f32(0x7E00)));
    CHECK(std::signbit(gguf_f16_to_f32(0x8000)));
    CHECK(gguf_bf16_to_f32(0x3F80) == 1.0f);
    CHECK(gguf_bf16_to_f32(0xC0A0) == -5.0f);
    // Every finite f16 round-trips through the test's own encoder where it is a normal number.
    for (uint32_t bits = 0x0400; bits < 0x7C00; bits += 37) CHECK(f16_bits(gguf_f16_to_f32(uint16_t(bits))) == bits);
}

TEST_CASE("gguf dequant: q4_0 and q4_1") {
    for (float d : scales) {
        std::vector<int> q(32);
        for (int& v : q) v = random_int(0, 15);
        std::vector<uint8_t> b0(18, 0), b1(20, 0);
        put_f16(b0, 0, d);
        put_f16(b1, 0, d);
        put_f16(b1, 2, -1.25f);
        std::vector<double> e0(32), e1(32);
        for (int i = 0; i < 32; ++i) {
            // Element i < 16 is the low nibble of byte i, element i >= 16 the high nibble of byte i - 16.
            put_bits(b0, 2 + i % 16, i < 16 ? 0 : 4, 4, q[i]);
            put_bits(b1, 4 + i % 16, i < 16 ? 0 : 4, 4, q[i]);
            e0[i] = double(d) * (q[i] - 8);
            e1[i] = double(d) * q[i] - 1.25;
        }
        check_close(decode(ggml_type::q4_0, b0, 32), e0);
        check_close(decode(ggml_type::q4_1, b1, 32), e1);
    }
    // One block written out by hand: d = 1, byte 0 = 0x9F -> x[0] = 15 - 8, x[16] = 9 - 8.
    std::vector<uint8_t> block(18, 0x88);
    block[0] = 0x00, block[1] = 0x3C, block[2] = 0x9F;
    auto x = decode(ggml_type::q4_0, block, 32);
    CHECK(x[0] == 7.0f);
    CHECK(x[16] == 1.0f);
    CHECK(x[1] == 0.0f);
}

TEST_CASE("gguf dequant: q5_0 and q5_1") {
    for (float d : scales) {
        std::vector<int> q(32);
        for (int& v : q) v = random_int(0, 31);
        std::vector<uint8_t> b0(22, 0), b1(24, 0);
        put_f16(b0, 0, d);
        put_f16(b1, 0, d);
        put_f16(b1, 2, 0.5f);
        std::vector<double> e0(32), e1(32);
        for (int i = 0; i < 32; ++i) {
            // Low 4 bits as Q4; the fifth bit is bit i of the little-endian u32 that follows the scales.
            put_bits(b0, 6 + i % 16, i < 16 ? 0 : 4, 4, q[i] & 15);
            put_bits(b0, 2 + i / 8, i % 8, 1, q[i] >> 4);
            put_bits(b1, 8 + i % 16, i < 16 ? 0 : 4, 4, q[i] & 15);
            put_bits(b1, 4 + i / 8, i % 8, 1, q[i] >> 4);
            e0[i] = double(d) * (q[i] - 16);
            e1[i] = double(d) * q[i] + 0.5;
        }
        check_close(decode(ggml_type::q5_0, b0, 32), e0);
        check_close(decode(ggml_type::q5_1, b1, 32), e1);
    }
}

TEST_CASE("gguf dequant: q8_0") {
    std::vector<uint8_t> block(34 * 2, 0);
    std::vector<double> expected(64);
    for (int b = 0; b < 2; ++b) {
        const float d = scales[b];
        put_f16(block, 34 * b, d);
        for (int i = 0; i < 32; ++i) {
            const int q = random_int(-128, 127);
            block[34 * b + 2 + i] = uint8_t(int8_t(q));
            expected[32 * b + i] = double(d) * q;
        }
    }
    check_close(decode(ggml_type::q8_0, block, 64), expected);
}

TEST_CASE("gguf dequant: q2_k") {
    // scales[16] (low nibble scale, high nibble min), qs[64], f16 d, f16 dmin. Element e uses
    // sub-block e / 16 and the 2-bit field (e / 32) % 4 of qs[32 * (e / 128) + e % 32].
    std::vector<uint8_t> b(84, 0);
    const float d = 0.5f, dmin = 0.25f;
    put_f16(b, 80, d);
    put_f16(b, 82, dmin);
    int sc[16], mn[16];
    for (int s = 0; s < 16; ++s) {
        sc[s] = random_int(0, 15), mn[s] = random_int(0, 15);
        put_bits(b, s, 0, 4, sc[s]);
        put_bits(b, s, 4, 4, mn[s]);
    }
    std::vector<double> expected(256);
    for (int e = 0; e < 256; ++e) {
        const int q = random_int(0, 3);
        put_bits(b, 16 + 32 * (e / 128) + e % 32, 2 * ((e / 32) % 4), 2, q);
        expected[e] = double(d) * sc[e / 16] * q - double(dmin) * mn[e / 16];
    }
    check_close(decode(ggml_type::q2_k, b, 256), expected);
}

TEST_CASE("gguf dequant: q3_k") {
    // hmask[32], qs[64], scales[12], f16 d. 6-bit scales biased by 32: low nibbles in bytes 0..7
    // (scales 0-7 low nibble, 8-15 high nibble), top 2 bits of scale i at bits 2 (i / 4) of byte 8 + i % 4.
    std::vector<uint8_t> b(110, 0);
    const float d = -0.75f;
    put_f16(b, 108, d);
    int sc[16];
    for (int s = 0; s < 16; ++s) {
        sc[s] = random_int(-32, 31);
        const int biased = sc[s] + 32;
        put_bits(b, 96 + s % 8, s < 8 ? 0 : 4, 4, biased & 15);
        put_bits(b, 96 + 8 + s % 4, 2 * (s / 4), 2, biased >> 4);
    }
    std::vector<double> expected(256);
    for (int e = 0; e < 256; ++e) {
        const int low = random_int(0, 3), high = random_int(0, 1);
        put_bits(b, 32 + 32 * (e / 128) + e % 32, 2 * ((e / 32) % 4), 2, low);
        put_bits(b, e % 32, e / 32, 1, high);  // hmask: bit e / 32 of byte e % 32
        expected[e] = double(d) * sc[e / 16] * (low - (high ? 0 : 4));
    }
    check_close(decode(ggml_type::q3_k, b, 256), expected);
}

namespace {

// The 12-byte (scale, min) packing of Q4_K/Q5_K, written pair by pair.
void pack_k4_scales(std::vector<uint8_t>& b, size_t at, const int* sc, const int* mn) {
    for (int i = 0; i < 8; ++i) {
        if (i < 4) {
            put_bits(b, at + i, 0, 6, sc[i]);
            put_bits(b, at + i + 4, 0, 6, mn[i]);
        } else {
            put_bits(b, at + i + 4, 0, 4, sc[i] & 15);
            put_bits(b, at + i + 4, 4, 4, mn[i] & 15);
            put_bits(b, at + i - 4, 6, 2, sc[i] >> 4);
            put_bits(b, at + i, 6, 2, mn[i] >> 4);
        }
    }
}

}  // namespace

TEST_CASE("gguf dequant: q4_k and q5_k") {
    // f16 d, f16 dmin, scales[12], [qh[32] for q5_k], qs[128]. Element e: sub-block e / 32, nibble
    // (e / 32) % 2 of qs[32 * (e / 64) + e % 32]; q5_k's fifth bit is bit e / 32 of qh[e % 32].
    for (bool five : {false, true}) {
        CAPTURE(five);
        const size_t qs_at = five ? 48 : 16;
        std::vector<uint8_t> b(five ? 176 : 144, 0);
        const float d = 0.0625f, dmin = 1.5f;
        put_f16(b, 0, d);
        put_f16(b, 2, dmin);
        int sc[8], mn[8];
        for (int s = 0; s < 8; ++s) sc[s] = random_int(0, 63), mn[s] = random_int(0, 63);
        sc[5] = 63, mn[6] = 47;  // make sure the split top bits are exercised
        pack_k4_scales(b, 4, sc, mn);
        std::vector<double> expected(256);
        for (int e = 0; e < 256; ++e) {
            const int q = random_int(0, five ? 31 : 15);
            put_bits(b, qs_at + 32 * (e / 64) + e % 32, 4 * ((e / 32) % 2), 4, q & 15);
            if (five) put_bits(b, 16 + e % 32, e / 32, 1, q >> 4);
            expected[e] = double(d) * sc[e / 32] * q - double(dmin) * mn[e / 32];
        }
        check_close(decode(five ? ggml_type::q5_k : ggml_type::q4_k, b, 256), expected);
    }
    // By hand: d = 1, dmin = 0, pair 4's scale = 0b11'0101 = 53 (low nibble 5 in byte 8, top bits 3
    // in byte 0's bits 6-7), all codes 1 -> elements 128..159 equal 53.
    std::vector<uint8_t> b(144, 0x11);
    b[0] = 0x00, b[1] = 0x3C, b[2] = 0x00, b[3] = 0x00;
    for (int i = 4; i < 16; ++i) b[i] = 0;
    b[4 + 0] = 0xC0;
    b[4 + 8] = 0x05;
    auto x = decode(ggml_type::q4_k, b, 256);
    CHECK(x[128] == 53.0f);
    CHECK(x[159] == 53.0f);
    CHECK(x[0] == 0.0f);  // pair 0's scale is byte 0's low 6 bits: 0
}

TEST_CASE("gguf dequant: q6_k") {
    // ql[128], qh[64], int8 scales[16], f16 d. Element e = 128 h + 32 g + l: low nibble g / 2 of
    // ql[64 h + 32 (g % 2) + l], top bits 2 g of qh[32 h + l], sub-block e / 16; x = d * s * (q - 32).
    std::vector<uint8_t> b(210, 0);
    const float d = 0.25f;
    put_f16(b, 208, d);
    int sc[16];
    for (int s = 0; s < 16; ++s) {
        sc[s] = random_int(-128, 127);
        b[192 + s] = uint8_t(int8_t(sc[s]));
    }
    std::vector<double> expected(256);
    for (int e = 0; e < 256; ++e) {
        const int q = random_int(0, 63), h = e / 128, g = (e / 32) % 4, l = e % 32;
        put_bits(b, 64 * h + 32 * (g % 2) + l, 4 * (g / 2), 4, q & 15);
        put_bits(b, 128 + 32 * h + l, 2 * g, 2, q >> 4);
        expected[e] = double(d) * sc[e / 16] * (q - 32);
    }
    check_close(decode(ggml_type::q6_k, b, 256), expected);
}

TEST_CASE("gguf dequant: sizes are checked and undecodable types refused") {
    std::vector<uint8_t> block(18, 0);
    std::vector<float> out(31);
    CHECK_THROWS_AS(dequantize_ggml(ggml_type::q4_0, std::as_bytes(std::span(block)), out), error);  // not whole blocks
    out.resize(64);
    CHECK_THROWS_AS(dequantize_ggml(ggml_type::q4_0, std::as_bytes(std::span(block)), out), error);  // too few bytes
    out.resize(32);
    CHECK_THROWS_WITH_AS(dequantize_ggml(ggml_type::iq4_nl, std::as_bytes(std::span(block)), out),
                         doctest::Contains("not supported"), error);
    CHECK(ggml_type_lookup(30)->name == "bf16");
    CHECK(ggml_type_lookup(14)->block_bytes == 210);
    CHECK_FALSE(ggml_type_lookup(4).has_value());  // a retired type number
    CHECK_FALSE(ggml_type_lookup(99).has_value());
}
