// f16 / bf16 conversions: the scalar reference against hardware conversion (F16C on x86,
// FCVT on aarch64) exhaustively for f16 -> f32 and on a dense sweep of f32; bf16 against an
// independent nearest-candidate rule; every ISA's row conversions against the reference.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kiln/kernels/kernels.hpp"
#include "kiln/quant/half.hpp"
#include "test_util.hpp"

using namespace kiln;

namespace {

uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
float float_of(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) uint16_t hw_f32_to_f16(float f) {
    return uint16_t(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0));
}
__attribute__((target("f16c"))) float hw_f16_to_f32(uint16_t h) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
bool have_hw() { return __builtin_cpu_supports("f16c"); }
#elif defined(__aarch64__)
uint16_t hw_f32_to_f16(float f) {
    const __fp16 h = static_cast<__fp16>(f);
    uint16_t u;
    std::memcpy(&u, &h, 2);
    return u;
}
float hw_f16_to_f32(uint16_t u) {
    __fp16 h;
    std::memcpy(&h, &u, 2);
    return static_cast<float>(h);
}
bool have_hw() { return true; }
#else
uint16_t hw_f32_to_f16(float) { return 0; }
float hw_f16_to_f32(uint16_t) { return 0; }
bool have_hw() { return false; }
#endif

bool is_nan16(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

// Same value, or both NaN.
bool same_f32(float a, float b) { return bits_of(a) == bits_of(b) || (std::isnan(a) && std::isnan(b)); }

}  // namespace

TEST_CASE("f16 to f32 is exact for all 65536 values") {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = quant::f16_to_f32(uint16_t(h));
        if (have_hw()) {
            CAPTURE(h);
            REQUIRE(same_f32(f, hw_f16_to_f32(uint16_t(h))));
        }
        // Round trip: every f16 is exactly representable, NaN stays NaN.
        const uint16_t back = quant::f32_to_f16(f);
        if (is_nan16(uint16_t(h))) {
            REQUIRE(is_nan16(back));
        } else {
            CAPTURE(h);
            REQUIRE(back == h);
        }
    }
}

TEST_CASE("f32 to f16 rounds to nearest even on a dense sweep") {
    REQUIRE(have_hw());
    // Stride coprime with 2^32 walks every exponent and many mantissas, both signs.
#if defined(__aarch64__)
    const uint64_t stride = 4099;  // under qemu: fewer points
#else
    const uint64_t stride = 251;
#endif
    size_t mismatches = 0;
    for (uint64_t u = 0; u < (uint64_t(1) << 32); u += stride) {
        const float f = float_of(uint32_t(u));
        const uint16_t mine = quant::f32_to_f16(f), hw = hw_f32_to_f16(f);
        if (mine != hw && !(is_nan16(mine) && is_nan16(hw))) ++mismatches;
    }
    CHECK(mismatches == 0);
}

TEST_CASE("f32 to f16 edge cases") {
    CHECK(quant::f32_to_f16(65504.0f) == 0x7bff);
    CHECK(quant::f32_to_f16(65519.99f) == 0x7bff);
    CHECK(quant::f32_to_f16(65520.0f) == 0x7c00);  // the midpoint ties to even: infinity
    CHECK(quant::f32_to_f16(-1e10f) == 0xfc00);
    CHECK(quant::f32_to_f16(std::ldexp(1.0f, -24)) == 0x0001);      // smallest subnormal
    CHECK(quant::f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);      // tie to even: zero
    CHECK(quant::f32_to_f16(std::ldexp(3.0f, -26)) == 0x0001);      // above the tie
    CHECK(quant::f32_to_f16(std::ldexp(3.0f, -25)) == 0x0002);      // 1.5 units: tie to even 2
    CHECK(quant::f32_to_f16(std::ldexp(1023.5f, -24)) == 0x0400);   // rounds up into normals
    CHECK(quant::f32_to_f16(-0.0f) == 0x8000);
    CHECK(quant::f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie: even mantissa
    CHECK(quant::f32_to_f16(1.0f + std::ldexp(3.0f, -11)) == 0x3c02);
    CHECK(is_nan16(quant::f32_to_f16(std::numeric_limits<float>::quiet_NaN())));
    CHECK(is_nan16(quant::f32_to_f16(float_of(0x7f800001u))));  // signalling NaN, low payload
    CHECK(quant::f32_to_f16(std::numeric_limits<float>::infinity()) == 0x7c00);
}

TEST_CASE("bf16 rounds to the nearest candidate with ties to even") {
    const uint64_t stride = 4093;
    size_t mismatches = 0;
    for (uint64_t u = 0; u < (uint64_t(1) << 32); u += stride) {
        const float f = float_of(uint32_t(u));
        const uint16_t mine = quant::f32_to_bf16(f);
        if (std::isnan(f)) {
            mismatches += !std::isnan(quant::bf16_to_f32(mine));
            continue;
        }
        // Candidates: truncation and the next value up in magnitude; past the largest finite
        // value that next value is 2^128, encoded as infinity.
        const uint16_t down = uint16_t(u >> 16), up = uint16_t(down + 1);
        uint16_t expect = down;
        if ((down & 0x7f80) != 0x7f80) {
            const double up_value = (up & 0x7fff) == 0x7f80 ? std::copysign(std::ldexp(1.0, 128), f)
                                                            : double(quant::bf16_to_f32(up));
            const double err_down = std::fabs(double(f) - double(quant::bf16_to_f32(down)));
            const double err_up = std::fabs(double(f) - up_value);
            expect = err_up < err_down ? up : err_down < err_up ? down : ((down & 1) ? up : down);
        }
        mismatches += mine != expect;
    }
    CHECK(mismatches == 0);
    CHECK(quant::f32_to_bf16(1.0f) == 0x3f80);
    CHECK(quant::bf16_to_f32(0x3f80) == 1.0f);
    CHECK(std::isnan(quant::bf16_to_f32(quant::f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST_CASE("row f16 conversions match the reference on every ISA") {
    for (size_t n : {1u, 3u, 7u, 8u, 9u, 31u, 33u, 255u, 4097u}) {
        auto x = test::gaussian(n, 11 + uint32_t(n), 100.0f);
        x[0] = 1e-7f;  // subnormal in f16
        if (n > 2) x[2] = 70000.0f;  // overflows to inf
        std::vector<uint16_t> ref(n);
        std::vector<float> back_ref(n);
        for (size_t i = 0; i < n; ++i) ref[i] = quant::f32_to_f16(x[i]), back_ref[i] = quant::f16_to_f32(ref[i]);
        for (const kernels::kernel_table* t : kernels::available()) {
            CAPTURE(std::string(t->isa));
            CAPTURE(n);
            std::vector<uint16_t> h(n);
            std::vector<float> back(n);
            t->f32_to_f16(x.data(), h.data(), n);
            t->f16_to_f32(h.data(), back.data(), n);
            CHECK(h == ref);
            CHECK(back == back_ref);
        }
    }
}
