// Tiled online-softmax attention (the FlashAttention recurrence) over xsimd batches; each ISA's
// .cpp instantiates it. The cache layout it reads is described in kiln/kernels/attention.hpp.
//
// Rows (query token t, head g of the group) are taken in blocks of up to row_block; for each
// block the key tiles are walked once, each tile converted to f32 in scratch, so every K/V tile
// is read from the cache once per block, i.e. once per GQA group for decode. Per row, a tile
// costs head_dim broadcast-FMAs into kv_tile/W score vectors (keys are transposed in the cache,
// so no horizontal sums), one exp per score, and the value rows FMA'd into the output row.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kiln/kernels/attention.hpp"
#include "kiln/quant/half.hpp"
#include "simd/float_ops.hpp"

namespace kiln::kernels {
namespace {

inline constexpr size_t attention_row_block = 64;  // rows sharing one conversion of a tile

// Fetches the next tile (null: there is none) while this one is converted: its 64-byte lines
// spread over the `steps` steps of the conversion loop, step k taking its share. A tile is a 4 KiB
// page for f16 and head_dim 64, where hardware prefetchers stop; a burst of prefetches at the
// tile's start measured slower (it floods the miss queue), a line per step ~10-25% faster from DRAM.
// The share is kept as a running remainder (no division per step: the f16 loop's steps are short).
struct next_tile {
    const std::byte* next;
    size_t lines, steps, owed = 0;
    next_tile(const std::byte* next_tile_start, size_t tile_bytes, size_t loop_steps)
        : next(next_tile_start), lines(tile_bytes / 64), steps(loop_steps) {}
    void step() {
        if (!next) return;
        for (owed += lines; owed >= steps; owed -= steps, next += 64) __builtin_prefetch(next, 0, 3);
    }
};

// n f16 elements to f32.
template <class Arch>
void f16_run_to_f32(const std::byte* src, size_t n, float* dst, next_tile pf) {
    constexpr size_t w = fbatch<Arch>::size;
    const auto* h = reinterpret_cast<const uint16_t*>(src);
    size_t i = 0;
    for (; i + w <= n; i += w) {
        pf.step();
        half_io<Arch>::load_f16(h + i).store_unaligned(dst + i);
    }
    for (; i < n; ++i) dst[i] = quant::f16_to_f32(h[i]);
}

// A bf16 pair word's halves as floats: low (shifted up) and high (masked): exact.
template <class Arch>
void split_bf16_pairs(const std::byte* src, fbatch<Arch>& low, fbatch<Arch>& high) {
    using ubatch = xsimd::batch<uint32_t, Arch>;
    const ubatch x = ubatch::load_unaligned(reinterpret_cast<const uint32_t*>(src));
    low = xsimd::bitwise_cast<fbatch<Arch>>(x << 16);
    high = xsimd::bitwise_cast<fbatch<Arch>>(x & ubatch(0xffff0000u));
}

inline float bf16_low(uint32_t word) { return quant::bf16_to_f32(uint16_t(word)); }
inline float bf16_high(uint32_t word) { return quant::bf16_to_f32(uint16_t(word >> 16)); }

// One tile's keys as f32 [head_dim][kv_tile]: an f32 tile in place, others converted into kt;
// `next` is the next tile's start, to prefetch (null: none).
template <class Arch>
const float* tile_keys(kv_type type, size_t hd, const std::byte* keys, float* kt, const std::byte* next) {
    if (type == kv_type::f32) return reinterpret_cast<const float*>(keys);
    const size_t tile_bytes = kv_tile_bytes(type, hd);
    if (type == kv_type::f16) {
        f16_run_to_f32<Arch>(keys, kv_tile * hd, kt, next_tile(next, tile_bytes, kv_tile * hd / fbatch<Arch>::size));
    } else if (type == kv_type::bf16) {  // words (k[2i], k[2i+1]) [pairs][kv_tile]
        constexpr size_t w = fbatch<Arch>::size;
        next_tile pf(next, tile_bytes, (hd + 1) / 2);
        for (size_t i = 0; 2 * i < hd; ++i) {
            pf.step();
            for (size_t j = 0; j < kv_tile; j += w) {
                fbatch<Arch> low, high;
                split_bf16_pairs<Arch>(keys + (i * kv_tile + j) * 4, low, high);
                low.store_unaligned(kt + 2 * i * kv_tile + j);
                if (2 * i + 1 < hd) high.store_unaligned(kt + (2 * i + 1) * kv_tile + j);
            }
        }
    } else {  // q8_0: int8 codes, then float scales [block][kv_tile]
        using batch = fbatch<Arch>;
        constexpr size_t w = batch::size;
        const auto* k8 = reinterpret_cast<const int8_t*>(keys);
        const auto* scales = reinterpret_cast<const float*>(keys + kv_tile * hd);
        next_tile pf(next, tile_bytes, hd);
        for (size_t d = 0; d < hd; ++d) {
            pf.step();
            const float* s = scales + (d / kv_block) * kv_tile;
            for (size_t j = 0; j < kv_tile; j += w)
                (half_io<Arch>::load_i8(k8 + d * kv_tile + j) * batch::load_unaligned(s + j))
                    .store_unaligned(kt + d * kv_tile + j);
        }
    }
    return kt;
}

// One tile's values as f32 [kv_tile][head_dim], likewise.
template <class Arch>
const float* tile_values(kv_type type, size_t hd, const std::byte* values, float* vt, const std::byte* next) {
    if (type == kv_type::f32) return reinterpret_cast<const float*>(values);
    const size_t tile_bytes = kv_tile_bytes(type, hd);
    if (type == kv_type::f16) {
        f16_run_to_f32<Arch>(values, kv_tile * hd, vt, next_tile(next, tile_bytes, kv_tile * hd / fbatch<Arch>::size));
    } else if (type == kv_type::bf16) {  // words (v_2m[d], v_2m+1[d]) [kv_tile / 2][hd]
        constexpr size_t w = fbatch<Arch>::size;
        const auto* words = reinterpret_cast<const uint32_t*>(values);
        next_tile pf(next, tile_bytes, kv_tile / 2);
        for (size_t m = 0; m < kv_tile / 2; ++m) {
            pf.step();
            size_t d = 0;
            for (; d + w <= hd; d += w) {
                fbatch<Arch> low, high;
                split_bf16_pairs<Arch>(values + (m * hd + d) * 4, low, high);
                low.store_unaligned(vt + 2 * m * hd + d);
                high.store_unaligned(vt + (2 * m + 1) * hd + d);
            }
            for (; d < hd; ++d) {
                vt[2 * m * hd + d] = bf16_low(words[m * hd + d]);
                vt[(2 * m + 1) * hd + d] = bf16_high(words[m * hd + d]);
            }
        }
    } else {  // q8_0: int8 codes, then float scales [kv_tile][block]
        using batch = fbatch<Arch>;
        constexpr size_t w = batch::size;  // divides kv_block: a batch never straddles two scales
        const size_t nb = kv_blocks(hd);
        const auto* v8 = reinterpret_cast<const int8_t*>(values);
        const auto* scales = reinterpret_cast<const float*>(values + kv_tile * hd);
        next_tile pf(next, tile_bytes, kv_tile);
        for (size_t j = 0; j < kv_tile; ++j) {
            pf.step();
            const float* s = scales + j * nb;
            size_t d = 0;
            for (; d + w <= hd; d += w)
                (half_io<Arch>::load_i8(v8 + j * hd + d) * batch(s[d / kv_block])).store_unaligned(vt + j * hd + d);
            for (; d < hd; ++d) vt[j * hd + d] = float(v8[j * hd + d]) * s[d / kv_block];
        }
    }
    return vt;
}

// Latent attention (no value run): the values are the first vd rows of the transposed key
// tile, turned into rows once per tile for all the query rows of the call.
inline const float* latent_values(const float* k, size_t vd, float* vt) {
    for (size_t d = 0; d < vd; ++d)
        for (size_t j = 0; j < kv_tile; ++j) vt[j * vd + d] = k[d * kv_tile + j];
    return vt;
}

// Scores of R query rows against one key tile, s[r][v] = q_r . K[:, v*w .. v*w+w): each key
// vector loaded once for R rows, R * nv independent FMA chains (a single row's two chains would
// wait on FMA latency instead).
template <class Arch, int R, size_t NV>
void tile_scores(const float* const* q, const float* K, size_t hd, fbatch<Arch> (&s)[R][NV]) {
    using batch = fbatch<Arch>;
    constexpr size_t w = batch::size;
    for (int r = 0; r < R; ++r)
        for (size_t v = 0; v < NV; ++v) s[r][v] = batch(0.0f);
    for (size_t d = 0; d < hd; ++d) {
        batch k[NV];
        for (size_t v = 0; v < NV; ++v) k[v] = batch::load_unaligned(K + d * kv_tile + v * w);
        for (int r = 0; r < R; ++r) {
            const batch qd(q[r][d]);
            for (size_t v = 0; v < NV; ++v) s[r][v] = xsimd::fma(qd, k[v], s[r][v]);
        }
    }
}

// out_r[d0 .. d0 + C*w) = alpha_r * out_r + sum_{j < n} p_r[j] V[j][d0 ..]: R rows x C vectors
// of accumulators stay in registers over the tile's positions.
template <class Arch, int R, int C>
void tile_values_into(float* const* out, const float* const* p, const float* alpha, const float* V, size_t vd,
                      size_t d0, size_t n) {
    using batch = fbatch<Arch>;
    constexpr size_t w = batch::size;
    batch acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = batch::load_unaligned(out[r] + d0 + c * w) * batch(alpha[r]);
    for (size_t j = 0; j < n; ++j) {
        batch v[C];
        for (int c = 0; c < C; ++c) v[c] = batch::load_unaligned(V + j * vd + d0 + c * w);
        for (int r = 0; r < R; ++r) {
            const batch pj(p[r][j]);
            for (int c = 0; c < C; ++c) acc[r][c] = xsimd::fma(pj, v[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c].store_unaligned(out[r] + d0 + c * w);
}

// All vd output columns of R rows: chunks of 4 vectors, then single vectors, then scalars.
template <class Arch, int R>
void rows_pv(float* const* out, const float* const* p, const float* alpha, const float* V, size_t vd, size_t n) {
    constexpr size_t w = fbatch<Arch>::size;
    size_t d = 0;
    for (; d + 4 * w <= vd; d += 4 * w) tile_values_into<Arch, R, 4>(out, p, alpha, V, vd, d, n);
    for (; d + w <= vd; d += w) tile_values_into<Arch, R, 1>(out, p, alpha, V, vd, d, n);
    for (; d < vd; ++d)
        for (int r = 0; r < R; ++r) {
            float acc = out[r][d] * alpha[r];
            for (size_t j = 0; j < n; ++j) acc += p[r][j] * V[j * vd + d];
            out[r][d] = acc;
        }
}

// exp(x) for x <= 0, -inf included (-> 0): 2^(x log2 e) = 2^n * 2^f with n an integer and
// |f| <= 1/2, 2^f by its Taylor series to f^6 (relative error < 2e-7), 2^n put into the exponent
// bits. Below 2^-126 (x < -87.3) it returns 0, where xsimd::exp would return a subnormal: next to
// the row's maximum, whose exp is 1, the difference is beyond float's precision. Cheaper than
// xsimd::exp, which handles every x and was a third of the decode kernel's time.
template <class Arch>
fbatch<Arch> exp_nonpositive(fbatch<Arch> x) {
    using batch = fbatch<Arch>;
    using ibatch = xsimd::batch<int32_t, Arch>;
    const batch t = xsimd::max(x * batch(1.44269504f), batch(-127.0f));
    const batch n = xsimd::nearbyint(t), f = t - n;
    batch p(1.5403530e-4f);
    p = xsimd::fma(p, f, batch(1.3333558e-3f));
    p = xsimd::fma(p, f, batch(9.6181291e-3f));
    p = xsimd::fma(p, f, batch(5.5504109e-2f));
    p = xsimd::fma(p, f, batch(2.4022651e-1f));
    p = xsimd::fma(p, f, batch(6.9314718e-1f));
    p = xsimd::fma(p, f, batch(1.0f));
    const batch two_n = xsimd::bitwise_cast<batch>((xsimd::to_int(n) + ibatch(127)) << 23);
    return xsimd::select(t > batch(-126.5f), p * two_n, batch(0.0f));
}

// One row's online-softmax step over a tile. Lane l of score vector v belongs to the tile's key
// key_index[v * w + l]; only keys < visible count. The scores are scaled, saturated (an infinite
// max would make exp(inf - inf)) and masked; probs gets exp(s - m_new) in the same lane order
// (0 for masked keys); run_max/run_sum move to the new max. Returns the factor exp(m_old - m_new)
// that rescales the row's output so far (0 on its first visible tile).
template <class Arch, size_t NV>
float online_softmax_step(fbatch<Arch> (&s)[NV], const float* key_index, size_t visible, float scale, float& run_max,
                          float& run_sum, float* probs) {
    using batch = fbatch<Arch>;
    constexpr size_t w = batch::size;
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const batch cut(static_cast<float>(visible)), vscale(scale), hi(std::numeric_limits<float>::max()),
        lo(-std::numeric_limits<float>::max());
    batch tile_max(neg_inf);
    for (size_t v = 0; v < NV; ++v) {
        const batch scaled = xsimd::min(xsimd::max(s[v] * vscale, lo), hi);
        s[v] = xsimd::select(batch::load_aligned(key_index + v * w) < cut, scaled, batch(neg_inf));
        tile_max = xsimd::max(tile_max, s[v]);
    }
    // Past the first tiles the running max rarely moves: a vector compare says whether it does
    // before any horizontal max is taken.
    const float m_old = run_max;
    float m_new = m_old;
    if (xsimd::any(tile_max > batch(m_old))) {
        alignas(64) float lanes[w];
        tile_max.store_aligned(lanes);
        m_new = *std::max_element(lanes, lanes + w);
    }
    const batch vm(m_new);
    batch psum(0.0f);
    for (size_t v = 0; v < NV; ++v) {
        const batch e = exp_nonpositive<Arch>(s[v] - vm);  // masked lanes: exp(-inf) = 0
        psum += e;
        e.store_aligned(probs + v * w);
    }
    const float alpha = m_old == m_new ? 1.0f : std::exp(m_old - m_new);
    run_sum = run_sum * alpha + xsimd::hadd(psum);
    run_max = m_new;
    return alpha;
}

// The end of a block of nr rows starting at row rb: outputs normalised (a row that saw no key
// stays zero), or the rows' max and sum handed out for attention_merge.
inline void finish_row_block(const attention_args& a, size_t rb, size_t nr, float* const* out_rows,
                             const float* run_max, const float* run_sum, size_t vd) {
    for (size_t r = 0; r < nr; ++r) {
        float* out = out_rows[r];
        if (a.normalize) {
            const float inv = run_sum[r] > 0.0f ? 1.0f / run_sum[r] : 0.0f;
            for (size_t d = 0; d < vd; ++d) out[d] *= inv;
        } else {
            a.row_max[rb + r] = run_max[r];
            a.row_sum[rb + r] = run_sum[r];
        }
    }
}

template <class Arch>
void simd_attention(const attention_args& a) {
    using batch = fbatch<Arch>;
    constexpr size_t w = batch::size;
    constexpr size_t nv = kv_tile / w;  // score vectors per row and tile
    static_assert(kv_tile % w == 0);
    // Rows per score micro-kernel: about 8 accumulators whatever the vector width.
    constexpr int score_rows = nv >= 8 ? 1 : int(8 / nv);
    alignas(64) static constexpr float iota[kv_tile] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                                        11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                                        22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const size_t hd = a.head_dim, rows = a.n_tokens * a.group, tile_bytes = kv_tile_bytes(a.type, hd);
    const size_t vd = a.value_dim ? a.value_dim : hd;
    const auto* keys = static_cast<const std::byte*>(a.keys);
    const auto* values = static_cast<const std::byte*>(a.values);
    float* kt = a.scratch;
    float* vt = kt + kv_tile * hd;
    float* run_max = vt + kv_tile * hd;              // [row_block]
    float* run_sum = run_max + attention_row_block;  // [row_block]
    // Per tile and row of the block: probabilities, the rescale of the old output, the count
    // of visible positions (0: the row does not take part in this tile).
    alignas(64) float probs[attention_row_block][kv_tile];
    float alpha[attention_row_block];
    size_t visible[attention_row_block];
    const float* q_rows[attention_row_block];
    float* out_rows[attention_row_block];
    const float* p_rows[attention_row_block];

    for (size_t rb = 0; rb < rows; rb += attention_row_block) {
        const size_t nr = std::min(attention_row_block, rows - rb);
        for (size_t r = 0; r < nr; ++r) {
            run_max[r] = neg_inf;
            run_sum[r] = 0.0f;
            const size_t t = (rb + r) / a.group, g = (rb + r) % a.group;
            q_rows[r] = a.q + t * a.q_stride + g * hd;
            out_rows[r] = a.out + t * a.out_stride + g * vd;
            p_rows[r] = probs[r];
            std::memset(out_rows[r], 0, vd * sizeof(float));
        }
        // Keys past the block's last visible position are never needed.
        const size_t last_token = (rb + nr - 1) / a.group;
        const size_t end = std::min(a.key_end, a.first_pos + last_token + 1);
        for (size_t tile_start = a.key_begin; tile_start < end; tile_start += kv_tile) {
            const size_t tile = tile_start / kv_tile;
            const bool more = tile_start + kv_tile < end;
            const float* K = tile_keys<Arch>(a.type, hd, keys + tile * tile_bytes, kt,
                                             more ? keys + (tile + 1) * tile_bytes : nullptr);
            const float* V = values ? tile_values<Arch>(a.type, hd, values + tile * tile_bytes, vt,
                                                        more ? values + (tile + 1) * tile_bytes : nullptr)
                                    : latent_values(K, vd, vt);
            const size_t in_tile = std::min(kv_tile, end - tile_start);
            size_t r0 = 0;
            // Scores in register-blocked groups of rows, then each row's online-softmax update.
            auto update_rows = [&](auto rows_tag, size_t first) {
                constexpr int R = decltype(rows_tag)::value;
                batch s[R][nv];
                tile_scores<Arch, R, nv>(q_rows + first, K, hd, s);
                for (int i = 0; i < R; ++i) {
                    const size_t r = first + size_t(i), t = (rb + r) / a.group;
                    const size_t limit = a.first_pos + t + 1;  // positions < limit are visible
                    if (limit <= tile_start) {
                        visible[r] = 0;
                        alpha[r] = 1.0f;
                        std::fill_n(probs[r], kv_tile, 0.0f);
                        continue;
                    }
                    visible[r] = std::min(in_tile, limit - tile_start);
                    alpha[r] = online_softmax_step<Arch, nv>(s[i], iota, visible[r], a.scale, run_max[r], run_sum[r],
                                                             probs[r]);
                }
            };
            for (; r0 + score_rows <= nr; r0 += score_rows) update_rows(std::integral_constant<int, score_rows>{}, r0);
            for (; r0 < nr; ++r0) update_rows(std::integral_constant<int, 1>{}, r0);
            // Output rows in pairs: a row that sees nothing here has p = 0 and alpha = 1, and
            // the pair runs over the positions its longer row sees (all stored, so finite).
            size_t r = 0;
            for (; r + 2 <= nr; r += 2) {
                const size_t n = std::max(visible[r], visible[r + 1]);
                if (n) rows_pv<Arch, 2>(out_rows + r, p_rows + r, alpha + r, V, vd, n);
            }
            if (r < nr && visible[r]) rows_pv<Arch, 1>(out_rows + r, p_rows + r, alpha + r, V, vd, visible[r]);
        }
        finish_row_block(a, rb, nr, out_rows, run_max, run_sum, vd);
    }
}

}  // namespace
}  // namespace kiln::kernels
