// Scalar reference of the tiled online-softmax attention of attention.hpp: the FlashAttention
// recurrence in plain loops. Each tile of positions is read back once per block of rows through
// kv_load, so this kernel has no layout code of its own to get wrong.
#include <algorithm>
#include <cmath>
#include <limits>

#include "scalar/scalar_ops.hpp"

namespace kiln::kernels::scalar {
namespace {

constexpr size_t row_block = 32;  // rows whose running max and sum live in scratch together
// Past the two converted tiles, scratch holds the block's max and sum and one tile of scores.
static_assert(2 * row_block + kv_tile <= attention_scratch_floats(0), "row state must fit the scratch");

// q.k can overflow float for finite inputs; a saturated score still softmaxes sensibly, while
// inf would give exp(inf - inf) = NaN. NaN is left alone so that NaN input stays visible.
float saturate(float s) {
    constexpr float big = std::numeric_limits<float>::max();
    return s > big ? big : s < -big ? -big : s;
}

}  // namespace

void attention(const attention_args& a) {
    const size_t hd = a.head_dim, rows = a.n_tokens * a.group;
    const size_t vd = a.value_dim ? a.value_dim : hd;  // value width (MLA: a prefix of the key)
    float* keys = a.scratch;                   // [kv_tile][hd]: one tile, a row per position
    float* values = keys + kv_tile * hd;       // [kv_tile][vd]
    float* run_max = values + kv_tile * hd;    // [row_block]
    float* run_sum = run_max + row_block;      // [row_block]
    float* score = run_sum + row_block;        // [kv_tile]

    for (size_t r0 = 0; r0 < rows; r0 += row_block) {
        const size_t nr = std::min(row_block, rows - r0);
        for (size_t r = 0; r < nr; ++r) {
            const size_t t = (r0 + r) / a.group, g = (r0 + r) % a.group;
            run_max[r] = -std::numeric_limits<float>::infinity();
            run_sum[r] = 0.0f;
            std::fill_n(a.out + t * a.out_stride + g * vd, vd, 0.0f);
        }
        // The block's last row sees the most; nothing past it (or past key_end) is read.
        const size_t end = std::min(a.key_end, a.first_pos + (r0 + nr - 1) / a.group + 1);
        for (size_t start = a.key_begin; start < end; start += kv_tile) {
            const size_t in_tile = std::min(kv_tile, end - start);
            for (size_t j = 0; j < in_tile; ++j) {
                kv_load(a.type, hd, start + j, a.keys, a.values, keys + j * hd, values + j * vd);
                if (!a.values) std::copy_n(keys + j * hd, vd, values + j * vd);
            }
            for (size_t r = 0; r < nr; ++r) {
                const size_t t = (r0 + r) / a.group, g = (r0 + r) % a.group;
                const size_t limit = a.first_pos + t + 1;  // causal: positions < limit
                if (limit <= start) continue;              // keeps the row's max off -inf - -inf
                const size_t visible = std::min(in_tile, limit - start);
                const float* q = a.q + t * a.q_stride + g * hd;
                float* out = a.out + t * a.out_stride + g * vd;

                float m = run_max[r];
                for (size_t j = 0; j < visible; ++j) {
                    float dot = 0.0f;
                    for (size_t d = 0; d < hd; ++d) dot += q[d] * keys[j * hd + d];
                    score[j] = saturate(a.scale * dot);
                    m = std::fmax(m, score[j]);
                }
                // m is finite here (visible >= 1), so alpha is 0 on the row's first tile
                // (run_max = -inf, out = 0) and exp of a non-positive number after.
                const float alpha = std::exp(run_max[r] - m);
                float sum = run_sum[r] * alpha;
                for (size_t d = 0; d < vd; ++d) out[d] *= alpha;
                for (size_t j = 0; j < visible; ++j) {
                    const float p = std::exp(score[j] - m);
                    sum += p;
                    for (size_t d = 0; d < vd; ++d) out[d] += p * values[j * vd + d];
                }
                run_max[r] = m;
                run_sum[r] = sum;
            }
        }
        for (size_t r = 0; r < nr; ++r) {
            const size_t t = (r0 + r) / a.group, g = (r0 + r) % a.group;
            if (a.normalize) {
                attention_finish(run_sum[r], a.out + t * a.out_stride + g * vd, vd);
            } else {
                a.row_max[r0 + r] = run_max[r];
                a.row_sum[r0 + r] = run_sum[r];
            }
        }
    }
}

}  // namespace kiln::kernels::scalar
