// MoE routing (see moe_routing.hpp), after HF's DeepseekV2 MoEGate (scoring_func softmax,
// topk_method greedy).
#include "kiln/runtime/moe_routing.hpp"

#include <algorithm>
#include <cmath>

namespace kiln {

void top_k_indices(const float* scores, size_t n, size_t k, int32_t* ids) {
    // Insertion into a sorted list of k: k is small (6 of 64 in DeepSeek-V2-Lite), and a strict
    // '>' keeps an earlier (lower) index ahead of a later equal score.
    size_t filled = 0;
    for (size_t e = 0; e < n; ++e) {
        const float s = scores[e];
        size_t at = filled;
        while (at > 0 && s > scores[size_t(ids[at - 1])]) --at;
        if (at >= k) continue;
        for (size_t j = std::min(filled, k - 1); j > at; --j) ids[j] = ids[j - 1];
        ids[at] = int32_t(e);
        filled = std::min(filled + 1, k);
    }
}

void route_token(const moe_routing& r, const float* logits, float* probs, int32_t* ids, float* weights) {
    const float max = *std::max_element(logits, logits + r.n_experts);
    double sum = 0;
    for (size_t e = 0; e < r.n_experts; ++e) sum += probs[e] = std::exp(logits[e] - max);
    for (size_t e = 0; e < r.n_experts; ++e) probs[e] = float(probs[e] / sum);
    top_k_indices(probs, r.n_experts, r.top_k, ids);
    double chosen = 0;
    for (size_t j = 0; j < r.top_k; ++j) chosen += weights[j] = probs[size_t(ids[j])];
    if (r.top_k > 1 && r.normalize) {
        const float inv = float(1.0 / (chosen + 1e-20));
        for (size_t j = 0; j < r.top_k; ++j) weights[j] *= inv;
    } else {
        for (size_t j = 0; j < r.top_k; ++j) weights[j] *= r.scale;
    }
}

}  // namespace kiln
