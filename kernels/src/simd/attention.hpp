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

#include "kiln/kernels/attention.hpp"
#include "kiln/quant/half.hpp"
#include "simd/float_ops.hpp"

namespace kiln::kernels {
namespace {

inline constexpr size_t attention_row_block = 64;  // rows sharing one conversion of a tile

// n f16 elements to f32.
template <class Arch>
void f16_run_to_f32(const std::byte* src, size_t n, float* dst) {
    constexpr size_t w = fbatch<Arch>::size;
    const auto* h = reinterpret_cast<const uint16_t*>(src);
    size_t i = 0;
    for (; i + w <= n; i += w) half_io<Arch>::load_f16(h + i).store_unaligned(dst + i);
    for (; i < n; ++i) dst[i] = quant::f16_to_f32(h[i]);
}

// One tile's keys as f32 [head_dim][kv_tile]: an f32 tile in place, others converted into kt.
template <class Arch>
const float* tile_keys(kv_type type, size_t hd, const std::byte* keys, float* kt) {
    if (type == kv_type::f32) return reinterpret_cast<const float*>(keys);
    if (type == kv_type::f16) {
        f16_run_to_f32<Arch>(keys, kv_tile * hd, kt);
    } else {  // q8_0: int8 codes, then float scales [block][kv_tile]
        const auto* k8 = reinterpret_cast<const int8_t*>(keys);
        const auto* scales = reinterpret_cast<const float*>(keys + kv_tile * hd);
        // A plain loop: the compiler vectorises the int8 widening with this TU's flags.
        for (size_t d = 0; d < hd; ++d) {
            const float* s = scales + (d / kv_block) * kv_tile;
            for (size_t j = 0; j < kv_tile; ++j) kt[d * kv_tile + j] = float(k8[d * kv_tile + j]) * s[j];
        }
    }
    return kt;
}

// One tile's values as f32 [kv_tile][head_dim], likewise.
template <class Arch>
const float* tile_values(kv_type type, size_t hd, const std::byte* values, float* vt) {
    if (type == kv_type::f32) return reinterpret_cast<const float*>(values);
    if (type == kv_type::f16) {
        f16_run_to_f32<Arch>(values, kv_tile * hd, vt);
    } else {  // q8_0: int8 codes, then float scales [kv_tile][block]
        const size_t nb = kv_blocks(hd);
        const auto* v8 = reinterpret_cast<const int8_t*>(values);
        const auto* scales = reinterpret_cast<const float*>(values + kv_tile * hd);
        for (size_t j = 0; j < kv_tile; ++j) {
            const float* s = scales + j * nb;
            for (size_t d = 0; d < hd; ++d) vt[j * hd + d] = float(v8[j * hd + d]) * s[d / kv_block];
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

template <class Arch>
void simd_attention(const attention_args& a) {
    using batch = fbatch<Arch>;
    constexpr size_t w = batch::size;
    constexpr size_t nv = kv_tile / w;  // score vectors per row and tile
    static_assert(kv_tile % w == 0);
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
    float* run_sum = run_max + attention_row_block;          // [row_block]

    for (size_t rb = 0; rb < rows; rb += attention_row_block) {
        const size_t nr = std::min(attention_row_block, rows - rb);
        for (size_t r = 0; r < nr; ++r) {
            run_max[r] = neg_inf;
            run_sum[r] = 0.0f;
            const size_t t = (rb + r) / a.group, g = (rb + r) % a.group;
            std::memset(a.out + t * a.out_stride + g * vd, 0, vd * sizeof(float));
        }
        // Keys past the block's last visible position are never needed.
        const size_t last_token = (rb + nr - 1) / a.group;
        const size_t end = std::min(a.key_end, a.first_pos + last_token + 1);
        for (size_t tile_start = a.key_begin; tile_start < end; tile_start += kv_tile) {
            const size_t tile = tile_start / kv_tile;
            const float* K = tile_keys<Arch>(a.type, hd, keys + tile * tile_bytes, kt);
            const float* V = values ? tile_values<Arch>(a.type, hd, values + tile * tile_bytes, vt)
                                    : latent_values(K, vd, vt);
            const size_t in_tile = std::min(kv_tile, end - tile_start);
            for (size_t r = 0; r < nr; ++r) {
                const size_t t = (rb + r) / a.group, g = (rb + r) % a.group;
                const size_t limit = a.first_pos + t + 1;  // positions < limit are visible
                if (limit <= tile_start) continue;
                const size_t visible = std::min(in_tile, limit - tile_start);
                const float* q = a.q + t * a.q_stride + g * hd;

                batch s[nv];
                for (size_t v = 0; v < nv; ++v) s[v] = batch(0.0f);
                for (size_t d = 0; d < hd; ++d) {
                    const batch qd(q[d]);
                    for (size_t v = 0; v < nv; ++v) s[v] = xsimd::fma(qd, batch::load_unaligned(K + d * kv_tile + v * w), s[v]);
                }
                const batch scale(a.scale), cut(static_cast<float>(visible));
                // Scores beyond float's range saturate: an infinite max would make exp(inf - inf).
                const batch hi(std::numeric_limits<float>::max()), lo(-std::numeric_limits<float>::max());
                batch tile_max(neg_inf);
                for (size_t v = 0; v < nv; ++v) {
                    const batch scaled = xsimd::min(xsimd::max(s[v] * scale, lo), hi);
                    s[v] = xsimd::select(batch::load_aligned(iota + v * w) < cut, scaled, batch(neg_inf));
                    tile_max = xsimd::max(tile_max, s[v]);
                }
                alignas(64) float lanes[w];
                tile_max.store_aligned(lanes);
                const float m_old = run_max[r];
                const float m_new = std::max(m_old, *std::max_element(lanes, lanes + w));
                const batch vm(m_new);
                batch psum(0.0f);
                alignas(64) float p[kv_tile];
                for (size_t v = 0; v < nv; ++v) {
                    const batch e = xsimd::exp(s[v] - vm);  // masked lanes: exp(-inf) = 0
                    psum += e;
                    e.store_unaligned(p + v * w);
                }
                const float alpha = std::exp(m_old - m_new);  // 0 on the first visible tile
                run_sum[r] = run_sum[r] * alpha + xsimd::hadd(psum);
                run_max[r] = m_new;

                float* out = a.out + t * a.out_stride + g * vd;
                const batch va(alpha);
                size_t d = 0;
                for (; d + w <= vd; d += w) {
                    batch acc = batch::load_unaligned(out + d) * va;
                    for (size_t j = 0; j < visible; ++j) acc = xsimd::fma(batch(p[j]), batch::load_unaligned(V + j * vd + d), acc);
                    acc.store_unaligned(out + d);
                }
                for (; d < vd; ++d) {
                    float acc = out[d] * alpha;
                    for (size_t j = 0; j < visible; ++j) acc += p[j] * V[j * vd + d];
                    out[d] = acc;
                }
            }
        }
        for (size_t r = 0; r < nr; ++r) {
            const size_t t = (rb + r) / a.group, g = (rb + r) % a.group;
            float* out = a.out + t * a.out_stride + g * vd;
            if (a.normalize) {
                const float inv = run_sum[r] > 0.0f ? 1.0f / run_sum[r] : 0.0f;
                for (size_t d = 0; d < vd; ++d) out[d] *= inv;
            } else {
                a.row_max[rb + r] = run_max[r];
                a.row_sum[rb + r] = run_sum[r];
            }
        }
    }
}

}  // namespace
}  // namespace kiln::kernels
