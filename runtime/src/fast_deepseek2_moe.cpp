// The fast deepseek2 feed-forward (see fast_deepseek2.hpp): dense SwiGLU, and the mixture of
// experts, whose tokens are grouped by expert so that each chosen expert's weights are read once
// per batch step and the others not at all.
#include <algorithm>

#include "kiln/formats/error.hpp"
#include "kiln/runtime/fast_deepseek2.hpp"
#include "kiln/runtime/moe_routing.hpp"

namespace kiln {

void fast_deepseek2::ffn(const matrix& gate, const matrix& up, const matrix& down, size_t n, float* out) {
    const size_t hidden = gate.rows;
    matmul(gate, n, gate_.data(), hidden);
    matmul(up, n, up_.data(), hidden);
    kernels_.swiglu(gate_.data(), up_.data(), gate_.data(), n * hidden);
    prepare_input(gate_.data(), hidden, n, kernels::uses_quantized_activations(down.type));
    matmul(down, n, out, down.rows);
}

void fast_deepseek2::mixture_of_experts(size_t layer, size_t n) {
    const deepseek2_config& c = config_;
    const deepseek2_layer_weights& L = model_->deepseek2_layers().layers[layer];
    const size_t dim = c.dim, E = c.n_experts, k = c.n_experts_used, eh = c.expert_hidden_dim;

    // Router (f32, see convert) and shared experts read the same normalised input.
    const bool shared = L.ffn_gate_shexp != nullptr;
    prepare_input(xn_.data(), dim, n,
                  shared && (kernels::uses_quantized_activations(L.ffn_gate_shexp->type) ||
                             kernels::uses_quantized_activations(L.ffn_up_shexp->type)));
    matmul(whole(*L.ffn_gate_inp), n, router_logits_.data(), E);
    if (shared) {
        ffn(whole(*L.ffn_gate_shexp), whole(*L.ffn_up_shexp), whole(*L.ffn_down_shexp), n, out_.data());
        kernels_.add(x_.data(), out_.data(), x_.data(), n * dim);
    }

    // Route every token, then group the (token, weight) pairs by expert, tokens in order.
    const moe_routing routing{E, k, c.norm_topk_prob, float(c.routed_scaling_factor)};
    std::fill(expert_count_.begin(), expert_count_.end(), 0u);
    for (size_t t = 0; t < n; ++t) {
        route_token(routing, router_logits_.data() + t * E, router_probs_.data(), expert_ids_.data() + t * k,
                    expert_weights_.data() + t * k);
        for (size_t j = 0; j < k; ++j) ++expert_count_[size_t(expert_ids_[t * k + j])];
    }
    uint32_t next = 0;
    for (size_t e = 0; e < E; ++e) expert_first_[e] = next, next += expert_count_[e];
    for (size_t t = 0; t < n; ++t)
        for (size_t j = 0; j < k; ++j) {
            const size_t e = size_t(expert_ids_[t * k + j]);
            const uint32_t slot = expert_first_[e]++;
            routed_token_[slot] = uint32_t(t);
            routed_weight_[slot] = expert_weights_[t * k + j];
        }

    // Each chosen expert over its tokens; outputs summed per token in expert order, a fixed
    // order whatever the thread count.
    std::fill_n(moe_out_.begin(), n * dim, 0.0f);
    const bool q_in = kernels::uses_quantized_activations(L.ffn_gate_exps->type) ||
                      kernels::uses_quantized_activations(L.ffn_up_exps->type);
    const bool q_hidden = kernels::uses_quantized_activations(L.ffn_down_exps->type);
    for (size_t e = 0, begin = 0; e < E; begin += expert_count_[e], ++e) {
        const size_t m = expert_count_[e];
        if (m == 0) continue;
        for (size_t i = 0; i < m; ++i)
            std::copy_n(xn_.data() + size_t(routed_token_[begin + i]) * dim, dim, ex_x_.data() + i * dim);
        prepare_input(ex_x_.data(), dim, m, q_in);
        matmul(slice(*L.ffn_gate_exps, e), m, ex_gate_.data(), eh);
        matmul(slice(*L.ffn_up_exps, e), m, ex_up_.data(), eh);
        kernels_.swiglu(ex_gate_.data(), ex_up_.data(), ex_gate_.data(), m * eh);
        prepare_input(ex_gate_.data(), eh, m, q_hidden);
        matmul(slice(*L.ffn_down_exps, e), m, ex_out_.data(), dim);
        for (size_t i = 0; i < m; ++i) {
            float* dst = moe_out_.data() + size_t(routed_token_[begin + i]) * dim;
            const float* src = ex_out_.data() + i * dim;
            const float wgt = routed_weight_[begin + i];
            for (size_t d = 0; d < dim; ++d) dst[d] += wgt * src[d];
        }
    }
    kernels_.add(x_.data(), moe_out_.data(), x_.data(), n * dim);
}

}  // namespace kiln
