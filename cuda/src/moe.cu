// Mixture-of-experts routing on the device (runtime/moe_routing.hpp's route_token): softmax over
// the router's logits, greedy top-k with ties going to the lower index, the chosen weights
// renormalised or scaled. One warp per token; lane l holds experts l, l + 32, ... And the sum of
// the chosen experts' outputs back into the residual stream.
#include <cfloat>
#include <climits>

#include "common.cuh"

namespace kiln::cuda::detail {
namespace {

constexpr int experts_per_lane = int(max_experts) / 32;

__global__ void route_kernel(const float* __restrict__ logits, size_t n_tokens, size_t n_experts, size_t top_k,
                             bool normalize, float scale, int32_t* __restrict__ ids, float* __restrict__ weights) {
    const size_t t = size_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    const unsigned lane = threadIdx.x % 32;
    if (t >= n_tokens) return;  // whole warps
    const float* row = logits + t * n_experts;
    float p[experts_per_lane];
    float max = -FLT_MAX;
#pragma unroll
    for (int j = 0; j < experts_per_lane; ++j) {
        const size_t e = lane + 32 * size_t(j);
        p[j] = e < n_experts ? row[e] : -FLT_MAX;
        max = fmaxf(max, p[j]);
    }
    max = warp_max(max);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < experts_per_lane; ++j) {
        const size_t e = lane + 32 * size_t(j);
        p[j] = e < n_experts ? expf(p[j] - max) : 0.0f;
        sum += p[j];
    }
    sum = warp_sum(sum);
#pragma unroll
    for (int j = 0; j < experts_per_lane; ++j) p[j] = lane + 32 * size_t(j) < n_experts ? p[j] / sum : -1.0f;
    // k rounds of a warp-wide argmax; a taken expert drops to -1 (probabilities are >= 0).
    float chosen = 0.0f;
    for (size_t k = 0; k < top_k; ++k) {
        float best = -1.0f;
        int best_e = INT_MAX;
#pragma unroll
        for (int j = 0; j < experts_per_lane; ++j) {
            const int e = int(lane) + 32 * j;
            if (p[j] > best) best = p[j], best_e = e;  // j ascending: the lower index wins a tie
        }
        for (int offset = 16; offset > 0; offset >>= 1) {
            const float other = __shfl_xor_sync(0xffffffffu, best, offset);
            const int other_e = __shfl_xor_sync(0xffffffffu, best_e, offset);
            if (other > best || (other == best && other_e < best_e)) best = other, best_e = other_e;
        }
        if (lane == 0) {
            ids[t * top_k + k] = best_e;
            weights[t * top_k + k] = best;
        }
        chosen += best;
#pragma unroll
        for (int j = 0; j < experts_per_lane; ++j)
            if (int(lane) + 32 * j == best_e) p[j] = -1.0f;
    }
    if (lane == 0) {
        const float factor = top_k > 1 && normalize ? 1.0f / (chosen + 1e-20f) : scale;
        for (size_t k = 0; k < top_k; ++k) weights[t * top_k + k] *= factor;
    }
}

// One thread per (token, element): the chosen experts' weighted outputs summed in ascending
// expert id from 0, as fast_deepseek2 accumulates moe_out, then added to x.
__global__ void combine_kernel(float* x, const float* __restrict__ expert_out, const int32_t* __restrict__ ids,
                               const float* __restrict__ weights, size_t n, size_t top_k, size_t dim) {
    const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n * dim) return;
    const size_t t = i / dim, d = i % dim;
    const int32_t* token_ids = ids + t * top_k;
    float sum = 0.0f;
    int32_t previous = -1;
    for (size_t k = 0; k < top_k; ++k) {
        size_t next = top_k;  // the slot of the smallest id above `previous` (ids of a token differ)
        for (size_t j = 0; j < top_k; ++j)
            if (token_ids[j] > previous && (next == top_k || token_ids[j] < token_ids[next])) next = j;
        if (next == top_k) break;
        previous = token_ids[next];
        sum += weights[t * top_k + next] * expert_out[(t * top_k + next) * dim + d];
    }
    x[i] += sum;
}

}  // namespace

void route_experts(const float* logits, size_t n_tokens, size_t n_experts, size_t top_k, bool normalize, float scale,
                   int32_t* ids, float* weights, cudaStream_t stream) {
    if (n_tokens == 0) return;
    constexpr unsigned warps = 4;
    route_kernel<<<unsigned((n_tokens + warps - 1) / warps), warps * 32, 0, stream>>>(logits, n_tokens, n_experts, top_k,
                                                                                      normalize, scale, ids, weights);
    check(cudaGetLastError(), "MoE routing kernel launch");
}

void moe_combine(float* x, const float* expert_out, const int32_t* ids, const float* weights, size_t n, size_t top_k,
                 size_t dim, cudaStream_t stream) {
    if (n * dim == 0) return;
    constexpr unsigned threads = 256;
    combine_kernel<<<unsigned((n * dim + threads - 1) / threads), threads, 0, stream>>>(x, expert_out, ids, weights, n,
                                                                                       top_k, dim);
    check(cudaGetLastError(), "MoE combine kernel launch");
}

}  // namespace kiln::cuda::detail
