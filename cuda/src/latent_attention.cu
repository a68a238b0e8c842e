// Multi-head latent attention with absorbed weights (fast_deepseek2::latent_attention): every
// query head attends over the one shared latent key per position, [c_kv (lora), k_rope (rope)]
// in f16, and the values are each key's first lora elements, so a tile of keys is loaded into
// shared memory once for four query rows. As attention.cu: one warp per query row (token t,
// head h: row t * n_heads + h), tiles of 32 keys one per lane for the scores, an online softmax
// with fp32 accumulators; decode (one token) splits the keys among blocks and merges partials.
#include <cfloat>

#include "online_softmax.cuh"

namespace kiln::cuda::detail {
namespace {

constexpr int latent_warps = 4;                          // query rows per block
constexpr int max_per_lane = int(max_latent_lora) / 32;  // value dims lane + 32 j of a lane

__global__ void __launch_bounds__(latent_warps * 32)
    latent_attention_kernel(const float* __restrict__ q, size_t n, latent_shape shape, const uint16_t* __restrict__ cache,
                            const int32_t* __restrict__ d_pos, size_t splits, float* __restrict__ scratch,
                            float* __restrict__ out) {
    extern __shared__ float smem[];
    const size_t lora = shape.lora, width = shape.lora + shape.rope, stride = tile_stride(width);
    const size_t rows = n * shape.n_heads;
    float* qs = smem;                                                  // [latent_warps][width]
    uint16_t* ks = reinterpret_cast<uint16_t*>(smem + latent_warps * width);  // [key_tile][stride]

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const size_t pos0 = size_t(*d_pos);
    const size_t row = size_t(blockIdx.x) * latent_warps + warp;
    const bool active = row < rows;
    const size_t qpos = pos0 + row / shape.n_heads;  // this warp's token sees keys 0 .. qpos
    // The block's key range: up to its last row's position, then this split's share of it.
    const size_t last_row = min(rows, size_t(blockIdx.x + 1) * latent_warps) - 1;
    const size_t keys = pos0 + last_row / shape.n_heads + 1;
    const size_t chunk = (keys + splits - 1) / splits;
    const size_t begin = min(keys, size_t(blockIdx.y) * chunk), end = min(keys, begin + chunk);

    if (active)
        for (size_t i = lane; i < width; i += 32) qs[warp * width + i] = q[row * width + i];

    float acc[max_per_lane];
#pragma unroll
    for (int j = 0; j < max_per_lane; ++j) acc[j] = 0.0f;
    float running_max = -FLT_MAX, running_sum = 0.0f;

    for (size_t tile = begin; tile < end; tile += key_tile) {
        const size_t count = min(size_t(key_tile), end - tile);
        __syncthreads();  // the previous tile is consumed (and qs written, the first time)
        for (size_t i = threadIdx.x; i < count * width; i += latent_warps * 32) {
            const size_t key = i / width, d = i % width;
            ks[key * stride + d] = cache[(tile + key) * width + d];
        }
        __syncthreads();
        if (!active || tile > qpos) continue;  // the whole tile is in this row's future
        const size_t key = tile + lane;
        const bool visible = size_t(lane) < count && key <= qpos;
        float score = -FLT_MAX;
        if (visible) {
            float dot = 0.0f;
            const uint16_t* k = ks + lane * stride;
            const float* qw = qs + warp * width;
            for (size_t d = 0; d < width; ++d) dot = fmaf(qw[d], f16_bits_to_f32(k[d]), dot);
            score = shape.scale * dot;  // as the CPU kernel: the scale applies to the dot product
        }
        const float p = online_softmax_step(score, visible, running_max, running_sum, acc);
        accumulate_values(p, count, ks, stride, lora, lane, acc);  // the value: the key's first lora elements
    }
    if (!active) return;
    if (splits == 1) {
        store_normalized(acc, running_sum, lora, lane, out + row * lora);
        return;
    }
    // Partial of split z for this row (decode: the row is the head): [lora accumulators, max, sum].
    store_partial(acc, running_max, running_sum, lora, lane, scratch + (size_t(blockIdx.y) * rows + row) * (lora + 2));
}

// out[row] = sum_z e^(m_z - M) acc_z / sum_z e^(m_z - M) sum_z over the splits' partials.
__global__ void latent_merge_kernel(const float* __restrict__ scratch, size_t rows, size_t lora, size_t splits,
                                    float* __restrict__ out) {
    const size_t row = blockIdx.x;
    merge_partials(scratch, rows, row, lora, splits, out + row * lora);
}

}  // namespace

size_t latent_attention_shared_bytes(const latent_shape& shape) {
    const size_t width = shape.lora + shape.rope;
    return latent_warps * width * sizeof(float) + key_tile * tile_stride(width) * sizeof(uint16_t);
}

void prepare_latent_attention(const latent_shape& shape) {
    // Above 48 KiB a kernel must opt in to dynamic shared memory (kv_lora 512 + rope 64 needs 45 KiB).
    const size_t bytes = latent_attention_shared_bytes(shape);
    if (bytes > 48 * 1024)
        check(cudaFuncSetAttribute(latent_attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)),
              "latent attention shared memory");
}

void latent_attention(const float* q, size_t n, const latent_shape& shape, const uint16_t* cache,
                      const int32_t* d_pos, size_t splits, float* scratch, float* out, cudaStream_t stream) {
    if (n == 0) return;
    if (n > 1 || splits == 0) splits = 1;  // prefill has a block per four rows already
    const size_t rows = n * shape.n_heads;
    const dim3 grid(unsigned((rows + latent_warps - 1) / latent_warps), unsigned(splits));
    latent_attention_kernel<<<grid, latent_warps * 32, latent_attention_shared_bytes(shape), stream>>>(
        q, n, shape, cache, d_pos, splits, scratch, out);
    check(cudaGetLastError(), "latent attention kernel launch");
    if (splits > 1) {
        latent_merge_kernel<<<unsigned(rows), 128, 0, stream>>>(scratch, rows, shape.lora, splits, out);
        check(cudaGetLastError(), "latent attention merge kernel launch");
    }
}

}  // namespace kiln::cuda::detail
