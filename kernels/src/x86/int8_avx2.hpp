// x86 integer helpers for the block kernels (256-bit AVX2; VNNI when the flags offer it).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace kiln::kernels {
namespace {

// Sums of u8 x s8 products per 32-bit lane (4 products each). Without VNNI: maddubs makes
// saturating 16-bit pair sums, and madd by ones widens them. kiln's operands never saturate:
// the unsigned side is a 4-bit code or |q8| <= 127, the signed side |q| <= 127, 2*127*127 < 2^15.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// Two 4-bit-code x int8 products summed per 32-bit lane: (lo . a_lo) + (hi . a_hi). Without
// VNNI the two maddubs results add in 16 bits before one widening: 2 * (2 * 15 * 127) < 2^15.
inline __m256i dot_u4s8_pair(__m256i lo, __m256i a_lo, __m256i hi, __m256i a_hi) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), lo, a_lo), hi, a_hi);
#else
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, a_lo), _mm256_maddubs_epi16(hi, a_hi));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
#endif
}

// q8_0 x int16 activations: a block's 32 int8 weights sign-extended once (shared by every
// token of a GEMM step), then multiplied by 32 int16 activations and summed per 32-bit lane.
// |w| <= 127 and |a| <= 32512, so a lane's 4 products stay below 2^25.
struct s16_block {
    __m256i lo, hi;
};
inline s16_block widen_s8(const int8_t* w) {
    return {_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))),
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16)))};
}
inline __m256i dot_s16(const s16_block& w, const int16_t* a) {
    const __m256i a_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
    const __m256i a_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 16));
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpwssd_epi32(_mm256_madd_epi16(w.lo, a_lo), w.hi, a_hi);
#else
    return _mm256_add_epi32(_mm256_madd_epi16(w.lo, a_lo), _mm256_madd_epi16(w.hi, a_hi));
#endif
}

// Eight vectors of 8 x i32 -> one vector whose lane k is the sum of vector k; fed in pairs so
// only a few partial results stay live.
inline __m256i pair_sums(__m256i v0, __m256i v1) { return _mm256_hadd_epi32(v0, v1); }
inline __m256i lane_sums8(__m256i p01, __m256i p23, __m256i p45, __m256i p67) {
    const __m256i q0123 = _mm256_hadd_epi32(p01, p23);  // [v0..v3 low halves | v0..v3 high halves]
    const __m256i q4567 = _mm256_hadd_epi32(p45, p67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(q0123, q4567, 0x20),
                            _mm256_permute2x128_si256(q0123, q4567, 0x31));
}

inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

inline float hsum_f32(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float f16_one(const void* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// The 8 six-bit fields of a 48-bit little-endian group (q4_k scales or mins) as 8 floats.
// Reads 8 bytes: the caller guarantees 2 readable bytes after the group.
inline __m256 unpack6x8(const uint8_t* packed) {
    uint64_t bits;
    std::memcpy(&bits, packed, 8);
    const __m256i all = _mm256_set1_epi64x(int64_t(bits));
    const __m256i f0123 = _mm256_srlv_epi64(all, _mm256_setr_epi64x(0, 6, 12, 18));
    const __m256i f4567 = _mm256_srlv_epi64(all, _mm256_setr_epi64x(24, 30, 36, 42));
    // dwords [f0 f4 f1 f5 f2 f6 f3 f7] after the blend, then put in order
    const __m256i mixed = _mm256_blend_epi32(f0123, _mm256_slli_epi64(f4567, 32), 0xaa);
    const __m256i ordered = _mm256_permutevar8x32_epi32(mixed, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    return _mm256_cvtepi32_ps(_mm256_and_si256(ordered, _mm256_set1_epi32(63)));
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

}  // namespace
}  // namespace kiln::kernels
