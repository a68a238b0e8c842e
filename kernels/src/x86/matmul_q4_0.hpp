// x86 q4_0 matmul kernel. Two blocks share one 256-bit register: [block 2p | block 2p+1]
// bytes; the low nibbles are elements 0..15 of both, the high nibbles 16..31, which is the
// order of the activation record's q_paired copy, so no shuffle is needed. The -8 offset is
// folded in per block as 8 * d_a * sum(a_q) from the record. One grouped run of 8 blocks
// (blocks.hpp) per step: its scales are one 16-byte load, each block pair's codes one 32-byte
// load. Blocks after the last run are whole blocks.
#pragma once
#include "activations.hpp"
#include "kiln/quant/blocks.hpp"
#include "x86/int8_avx2.hpp"

namespace kiln::kernels {
namespace {

struct q4_0_x86 {
    // One block alone (the odd tail): byte j = element j (low nibble) | element j + 16 (high).
    static __m256i codes(const quant::q4_0_block& blk) {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.q));
        const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
        return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
    }

    // Codes x activations of a block pair: 4 lanes of block 2p, then 4 lanes of block 2p+1.
    static __m256i pair_dot(__m256i lo, __m256i hi, const int8_t* paired) {
        return dot_u4s8_pair(lo, load256(paired), hi, load256(paired + 32));
    }

    template <int N>
    static void run(const uint8_t* row, size_t cols, const act_row* a, float* out) {
        const auto* blk = reinterpret_cast<const quant::q4_0_block*>(row);  // whole blocks past the runs
        const size_t nb = cols / quant::q4_0_elems;
        constexpr size_t run_bytes = quant::block_group * sizeof(quant::q4_0_block);
        const __m256i low4 = _mm256_set1_epi8(0x0f);
        const __m256 minus8 = _mm256_set1_ps(-8.0f);
        // hadd leaves lanes as blocks [0 2 4 6 | 1 3 5 7]: this puts them back in order.
        const __m256i block_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        __m256 acc[N];
        for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
        size_t b = 0;
        for (; b + 8 <= nb; b += 8) {
            const uint8_t* run = row + b / quant::block_group * run_bytes;
            __m256i pairs[N][4];
            for (int p = 0; p < 4; ++p) {
                const __m256i raw = load256(run + 2 * quant::block_group + 32 * p);  // blocks 2p, 2p+1
                const __m256i lo = _mm256_and_si256(raw, low4);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
                for (int t = 0; t < N; ++t) pairs[t][p] = pair_dot(lo, hi, a[t].qp + (b + 2 * p) * 32);
            }
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(run)));
            for (int t = 0; t < N; ++t) {
                const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(pairs[t][0], pairs[t][1]),
                                                    _mm256_hadd_epi32(pairs[t][2], pairs[t][3]));
                const __m256 sums = _mm256_cvtepi32_ps(_mm256_permutevar8x32_epi32(h, block_order));
                // d_a * sum(codes * a) - 8 * d_a * sum(a), per block
                const __m256 blocks = _mm256_fmadd_ps(sums, _mm256_loadu_ps(a[t].d + b),
                                                      _mm256_mul_ps(minus8, _mm256_loadu_ps(a[t].ds + b)));
                acc[t] = _mm256_fmadd_ps(blocks, dw, acc[t]);
            }
        }
        float tail[N] = {};
        for (; b < nb; ++b) {
            const __m256i w = codes(blk[b]);
            const float dw = f16_one(&blk[b].d);
            for (int t = 0; t < N; ++t) {
                const float isum = float(hsum_i32(dot_u8s8(w, load256(a[t].q + b * 32))));
                tail[t] += dw * (a[t].d[b] * isum - 8.0f * a[t].ds[b]);
            }
        }
        for (int t = 0; t < N; ++t) out[t] = hsum_f32(acc[t]) + tail[t];
    }
};

}  // namespace
}  // namespace kiln::kernels
