// Causal GQA attention over one layer's f16 KV cache. Each block takes one query head and up to
// four query rows (one warp each); keys and values come into shared memory in tiles of 32
// positions, one per lane for the scores, and an online softmax (running max and sum) folds each
// tile into fp32 accumulators, so any context length runs in fixed memory. Decode (one row)
// splits the keys among several blocks per head and merges their partials.
#include <cfloat>

#include "online_softmax.cuh"

namespace kiln::cuda::detail {
namespace {

constexpr int attn_warps = 4;                       // query rows per block
constexpr int max_per_lane = int(max_head_dim) / 32;  // accumulator slots of a lane: dims lane + 32 j

__global__ void __launch_bounds__(attn_warps * 32)
    attention_kernel(const float* __restrict__ q, size_t n, attention_shape shape, const uint16_t* __restrict__ k_cache,
                     const uint16_t* __restrict__ v_cache, const int32_t* __restrict__ d_pos, size_t splits,
                     float* __restrict__ scratch, float* __restrict__ out) {
    extern __shared__ float smem[];
    const size_t hd = shape.head_dim, stride = tile_stride(hd);
    const size_t q_dim = shape.n_heads * hd, kv_dim = shape.n_kv_heads * hd;
    float* qs = smem;                                                       // [attn_warps][hd]
    uint16_t* ks = reinterpret_cast<uint16_t*>(smem + attn_warps * hd);     // [key_tile][stride]
    uint16_t* vs = ks + key_tile * stride;                                  // [key_tile][stride]

    const size_t head = blockIdx.x, kv_head = head / (shape.n_heads / shape.n_kv_heads);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const size_t pos0 = size_t(*d_pos);
    const size_t row = size_t(blockIdx.y) * attn_warps + warp;
    const bool active = row < n;
    const size_t qpos = pos0 + row;  // this warp's position: it sees keys 0 .. qpos
    // The block's key range: up to its last row's position, then this split's share of it.
    const size_t last_row = min(n, size_t(blockIdx.y + 1) * attn_warps) - 1;
    const size_t keys = pos0 + last_row + 1;
    const size_t chunk = (keys + splits - 1) / splits;
    const size_t begin = min(keys, size_t(blockIdx.z) * chunk), end = min(keys, begin + chunk);

    const float scale = rsqrtf(float(hd));
    if (active)
        for (size_t i = lane; i < hd; i += 32) qs[warp * hd + i] = q[row * q_dim + head * hd + i] * scale;

    float acc[max_per_lane];
#pragma unroll
    for (int j = 0; j < max_per_lane; ++j) acc[j] = 0.0f;
    float running_max = -FLT_MAX, running_sum = 0.0f;

    for (size_t tile = begin; tile < end; tile += key_tile) {
        const size_t count = min(size_t(key_tile), end - tile);
        __syncthreads();  // the previous tile is consumed (and qs written, the first time)
        for (size_t i = threadIdx.x; i < count * hd; i += attn_warps * 32) {
            const size_t key = i / hd, d = i % hd;
            const size_t at = (tile + key) * kv_dim + kv_head * hd + d;
            ks[key * stride + d] = k_cache[at];
            vs[key * stride + d] = v_cache[at];
        }
        __syncthreads();
        if (!active || tile > qpos) continue;  // the whole tile is in this row's future
        // Lane `lane` scores key tile + lane.
        const size_t key = tile + lane;
        const bool visible = size_t(lane) < count && key <= qpos;
        float score = -FLT_MAX;
        if (visible) {
            score = 0.0f;
            const uint16_t* k = ks + lane * stride;
            const float* qw = qs + warp * hd;
            for (size_t d = 0; d < hd; ++d) score = fmaf(qw[d], f16_bits_to_f32(k[d]), score);
        }
        const float p = online_softmax_step(score, visible, running_max, running_sum, acc);
        accumulate_values(p, count, vs, stride, hd, lane, acc);
    }
    if (!active) return;
    if (splits == 1) {
        store_normalized(acc, running_sum, hd, lane, out + row * q_dim + head * hd);
        return;
    }
    // Partial of split z for this head (decode: row 0): [hd accumulators, max, sum].
    store_partial(acc, running_max, running_sum, hd, lane,
                  scratch + (size_t(blockIdx.z) * shape.n_heads + head) * (hd + 2));
}

// out[head] = sum_z e^(m_z - M) acc_z / sum_z e^(m_z - M) sum_z over the splits' partials.
__global__ void merge_kernel(const float* __restrict__ scratch, attention_shape shape, size_t splits,
                             float* __restrict__ out) {
    const size_t head = blockIdx.x, hd = shape.head_dim;
    merge_partials(scratch, shape.n_heads, head, hd, splits, out + head * hd);
}

}  // namespace

void attention(const float* q, size_t n, const attention_shape& shape, const uint16_t* k_cache,
               const uint16_t* v_cache, const int32_t* d_pos, size_t splits, float* scratch, float* out,
               cudaStream_t stream) {
    if (n == 0) return;
    if (n > 1) splits = 1;  // prefill has a block per four rows already
    if (splits == 0) splits = 1;
    const size_t hd = shape.head_dim;
    const size_t shared = attn_warps * hd * sizeof(float) + 2 * key_tile * tile_stride(hd) * sizeof(uint16_t);
    const dim3 grid(unsigned(shape.n_heads), unsigned((n + attn_warps - 1) / attn_warps), unsigned(splits));
    attention_kernel<<<grid, attn_warps * 32, shared, stream>>>(q, n, shape, k_cache, v_cache, d_pos, splits, scratch,
                                                                out);
    check(cudaGetLastError(), "attention kernel launch");
    if (splits > 1) {
        merge_kernel<<<unsigned(shape.n_heads), 128, 0, stream>>>(scratch, shape, splits, out);
        check(cudaGetLastError(), "attention merge kernel launch");
    }
}

}  // namespace kiln::cuda::detail
