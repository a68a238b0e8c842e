// The avx512 kernel table, shared by avx512.cpp and avx512vnni.cpp: float kernels on 512-bit
// batches; block kernels reuse the 256-bit integer code (with vpdpbusd when the including TU is
// compiled with VNNI), since their limit is memory bandwidth or int8 throughput, not width.
#pragma once
#include "simd/float_ops.hpp"

namespace kiln::kernels {
namespace {

using avx512_arch = xsimd::avx512bw;

template <>
struct half_io<avx512_arch> {
    static fbatch<avx512_arch> load_f16(const uint16_t* p) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    static void store_f16(uint16_t* p, fbatch<avx512_arch> v) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    static fbatch<avx512_arch> load_bf16(const uint16_t* p) {
        const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
    }
    static fbatch<avx512_arch> load_i8(const int8_t* p) {
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    }
};

}  // namespace
}  // namespace kiln::kernels

#include "tables.hpp"
#include "x86/table.hpp"
