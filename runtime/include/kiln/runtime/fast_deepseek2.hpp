// The fast deepseek2 forward pass: multi-head latent attention with weight absorption over a
// latent cache (W_UK folded into the query, W_UV applied after attention, so attention runs in
// the latent space through the tiled online-softmax kernel and per-head keys and values are
// never rebuilt), and mixture-of-experts that reads only the chosen experts' weights. Weights
// are used in place from the mmap in their stored type; rows split across the thread pool with
// static splits, so results do not depend on the thread count.
#pragma once
#include <memory>
#include <vector>

#include "kiln/kernels/kernels.hpp"
#include "kiln/runtime/language_model.hpp"
#include "kiln/runtime/latent_cache.hpp"
#include "kiln/runtime/model.hpp"
#include "kiln/runtime/thread_pool.hpp"

namespace kiln {

struct fast_deepseek2_options {
    int32_t context_length = 0;  // 0 = the model's own
    int32_t max_batch = 512;     // tokens per forward_batch step
    kernels::kv_type kv_type = kernels::kv_type::f16;
};

class fast_deepseek2 final : public language_model {
public:
    fast_deepseek2(std::shared_ptr<const model> m, thread_pool& pool, fast_deepseek2_options options = {});

    std::span<const float> forward(int32_t token, int32_t pos) override;
    std::span<const float> forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits) override;
    int32_t context_length() const override { return context_; }
    int32_t vocab_size() const override { return int32_t(config_.vocab_size); }

    const latent_cache& cache() const { return cache_; }

private:
    // One matrix of a tensor: the whole of a 2-D one, or one expert / head of a 3-D one.
    struct matrix {
        const std::byte* data;
        tensor_type type;
        size_t rows, cols;
    };
    static matrix whole(const tensor_view& t);
    static matrix slice(const tensor_view& t, size_t index);

    void forward_step(const int32_t* tokens, size_t n, int32_t pos, bool all_logits, float* logits_out);
    // Makes n rows of `cols` floats the input of the following matmuls, quantized once when
    // `quantize` (one of the consuming weights takes int8 activations).
    void prepare_input(const float* x, size_t cols, size_t n, bool quantize);
    // y[t * ldy + r] = W x_t for the prepared input, rows split across threads.
    void matmul(const matrix& w, size_t n, float* y, size_t ldy);
    // Per head h of a [n_heads, rows, cols] tensor: y[t * ldy + h * head_stride + r] = W_h x_{h,t}
    // with x_{h,t} the head's rows in head_in_ ([head][token][cols]); heads split across threads.
    void head_matmul(const tensor_view& w, size_t n, float* y, size_t head_stride, size_t ldy);
    // out = down(silu(gate x) * up x) for the prepared input x (n rows of dim).
    void ffn(const matrix& gate, const matrix& up, const matrix& down, size_t n, float* out);
    void attention(size_t layer, size_t n, int32_t pos);
    void latent_attention(size_t layer, size_t n, int32_t pos);
    void latent_attention_split(size_t layer, int32_t pos, size_t chunks);
    void mixture_of_experts(size_t layer, size_t n);

    std::shared_ptr<const model> model_;
    deepseek2_config config_;
    thread_pool& pool_;
    const kernels::kernel_table& kernels_;
    int32_t context_;
    size_t max_batch_;
    float softmax_scale_;

    latent_cache cache_;
    // Activations of one batch step, [token][width].
    std::vector<float> x_, xn_, q_, q_a_, kv_, qa_, att_, av_, out_, gate_, up_;
    std::vector<float> head_in_;        // [head][token][nope or kv_lora]
    std::vector<std::byte> head_q_;     // the same, quantized per head
    std::vector<float> att_scratch_;    // per thread: attention_scratch_floats(latent width)
    std::vector<float> part_out_, part_max_, part_sum_;  // split decode partials
    std::vector<float> rope_cos_, rope_sin_;             // [token][qk_rope_head_dim / 2]
    // MoE: router logits [token][expert], choices [token][k], tokens grouped by expert.
    std::vector<float> router_logits_, router_probs_, expert_weights_;
    std::vector<int32_t> expert_ids_;
    std::vector<uint32_t> expert_count_, expert_first_, routed_token_;
    std::vector<float> routed_weight_;
    std::vector<float> ex_x_, ex_gate_, ex_up_, ex_out_, moe_out_;
    std::vector<std::byte> input_q_;
    const float* input_f32_ = nullptr;
    size_t input_cols_ = 0;
    std::vector<float> logits_;
};

}  // namespace kiln
