// Mixture-of-experts routing as DeepSeek-V2 does it (softmax gating, greedy top-k), shared by the
// reference and the fast pass so that both pick the same experts with the same weights.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

struct moe_routing {
    size_t n_experts = 0;
    size_t top_k = 0;
    bool normalize = false;  // renormalise the k weights to sum 1 (HF norm_topk_prob, when top_k > 1)
    float scale = 1.0f;      // else multiply them by routed_scaling_factor
};

// The k largest of `scores` (n values), largest first; equal scores go to the lower index, so
// the choice is deterministic and independent of threads. ids gets k indices.
void top_k_indices(const float* scores, size_t n, size_t k, int32_t* ids);

// Routes one token: probs (n_experts floats of scratch) = softmax(logits), ids = top-k of probs,
// weights = their probabilities, normalised or scaled as `r` says. ids and weights get top_k values.
void route_token(const moe_routing& r, const float* logits, float* probs, int32_t* ids, float* weights);

}  // namespace kiln
