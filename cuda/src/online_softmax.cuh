// The pieces attention.cu and latent_attention.cu share: keys in tiles of 32 held in shared
// memory, one warp per query row scoring one key per lane, an online softmax (running max and
// sum) folding each tile into fp32 accumulators (dims lane + 32 j of a lane, j < N), and for
// split decode a partial [accumulators, max, sum] per split, merged by a second kernel.
#pragma once
#include <cfloat>

#include "common.cuh"

namespace kiln::cuda::detail {

constexpr int key_tile = 32;  // positions per tile: one per lane

// Shared-memory stride of a cached row, in halves; (width + 2) / 2 words is odd for widths that
// are multiples of 4, so the 32 lanes reading 32 different keys hit 32 different banks.
__host__ __device__ inline size_t tile_stride(size_t width) { return width + 2; }

// Folds one tile's scores into the running max and sum and rescales the accumulators; returns
// this lane's weight e^(score - max) (0 where the key is not visible).
template <int N>
__device__ __forceinline__ float online_softmax_step(float score, bool visible, float& running_max, float& running_sum,
                                                     float (&acc)[N]) {
    const float tile_max = warp_max(score);
    const float new_max = fmaxf(running_max, tile_max);
    const float correction = expf(running_max - new_max);
    const float p = visible ? expf(score - new_max) : 0.0f;
    running_sum = running_sum * correction + warp_sum(p);
    running_max = new_max;
#pragma unroll
    for (int j = 0; j < N; ++j) acc[j] *= correction;
    return p;
}

// acc[j] += p_key * value[key][lane + 32 j] over the tile's `count` keys (p_key from lane key),
// for dims below `width`; values are f16 rows `stride` halves apart.
template <int N>
__device__ __forceinline__ void accumulate_values(float p, size_t count, const uint16_t* values, size_t stride,
                                                  size_t width, int lane, float (&acc)[N]) {
    for (size_t key_i = 0; key_i < count; ++key_i) {
        const float pk = __shfl_sync(0xffffffffu, p, int(key_i));
        const uint16_t* v = values + key_i * stride;
#pragma unroll
        for (int j = 0; j < N; ++j) {
            const size_t d = size_t(lane) + 32 * j;
            if (d < width) acc[j] = fmaf(pk, f16_bits_to_f32(v[d]), acc[j]);
        }
    }
}

// out[d] = acc / sum for this lane's dims below width (0 when no key was visible).
template <int N>
__device__ __forceinline__ void store_normalized(const float (&acc)[N], float running_sum, size_t width, int lane,
                                                 float* out) {
    const float inv = running_sum > 0.0f ? 1.0f / running_sum : 0.0f;
#pragma unroll
    for (int j = 0; j < N; ++j) {
        const size_t d = size_t(lane) + 32 * j;
        if (d < width) out[d] = acc[j] * inv;
    }
}

// A split's partial: [width accumulators, max, sum].
template <int N>
__device__ __forceinline__ void store_partial(const float (&acc)[N], float running_max, float running_sum, size_t width,
                                              int lane, float* part) {
#pragma unroll
    for (int j = 0; j < N; ++j) {
        const size_t d = size_t(lane) + 32 * j;
        if (d < width) part[d] = acc[j];
    }
    if (lane == 0) {
        part[width] = running_sum > 0.0f ? running_max : -FLT_MAX;  // an empty split weighs nothing
        part[width + 1] = running_sum;
    }
}

// out[d] = sum_z e^(m_z - M) acc_z / sum_z e^(m_z - M) sum_z over the partials of `index`, split
// z's at scratch + (z * count + index) * (width + 2); the block's threads share the dims.
__device__ __forceinline__ void merge_partials(const float* __restrict__ scratch, size_t count, size_t index,
                                               size_t width, size_t splits, float* __restrict__ out) {
    float global_max = -FLT_MAX;
    for (size_t z = 0; z < splits; ++z) global_max = fmaxf(global_max, scratch[(z * count + index) * (width + 2) + width]);
    for (size_t d = threadIdx.x; d < width; d += blockDim.x) {
        float value = 0.0f, total = 0.0f;
        for (size_t z = 0; z < splits; ++z) {
            const float* part = scratch + (z * count + index) * (width + 2);
            if (part[width + 1] <= 0.0f) continue;
            const float weight = expf(part[width] - global_max);
            value = fmaf(weight, part[d], value);
            total = fmaf(weight, part[width + 1], total);
        }
        out[d] = total > 0.0f ? value / total : 0.0f;
    }
}

}  // namespace kiln::cuda::detail
