// The avx2 instruction set (AVX2 + FMA + F16C): built with -mavx2 -mfma -mf16c.
#include "simd/float_ops.hpp"

namespace kiln::kernels {
namespace {

using avx2_arch = xsimd::fma3<xsimd::avx2>;

template <>
struct half_io<avx2_arch> {
    static fbatch<avx2_arch> load_f16(const uint16_t* p) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    static void store_f16(uint16_t* p, fbatch<avx2_arch> v) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    static fbatch<avx2_arch> load_bf16(const uint16_t* p) {
        const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
    }
    static fbatch<avx2_arch> load_i8(const int8_t* p) {
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
    }
};

}  // namespace
}  // namespace kiln::kernels

#include "tables.hpp"
#include "x86/table.hpp"

namespace kiln::kernels {

const kernel_table& avx2_table() {
    static const kernel_table table = make_x86_table<avx2_arch>("avx2");
    return table;
}

}  // namespace kiln::kernels
