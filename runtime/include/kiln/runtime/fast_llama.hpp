// The fast llama forward pass: weights used in place from the mmap in their stored type, SIMD
// kernels from the dispatch table, matrix rows split across the thread pool, batched prefill.
#pragma once
#include <initializer_list>
#include <memory>
#include <vector>

#include "kiln/kernels/kernels.hpp"
#include "kiln/runtime/kv_cache.hpp"
#include "kiln/runtime/language_model.hpp"
#include "kiln/runtime/model.hpp"
#include "kiln/runtime/thread_pool.hpp"

namespace kiln {

struct fast_llama_options {
    int32_t context_length = 0;  // 0 = the model's own
    int32_t max_batch = 512;     // tokens per forward_batch step (prompts are split into such steps)
    kernels::kv_type kv_type = kernels::kv_type::f16;
};

class fast_llama final : public language_model {
public:
    fast_llama(std::shared_ptr<const model> m, thread_pool& pool, fast_llama_options options = {});

    std::span<const float> forward(int32_t token, int32_t pos) override;
    std::span<const float> forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits) override;
    int32_t context_length() const override { return context_; }
    int32_t vocab_size() const override { return int32_t(config_.vocab_size); }

    const kv_cache& cache() const { return cache_; }

private:
    // One batch step of at most max_batch tokens; writes logits rows for the tokens that want them.
    void forward_step(const int32_t* tokens, size_t n, int32_t pos, bool all_logits, float* logits_out);
    // Makes n rows of `cols` activations the input of the following matmuls by `consumers`,
    // quantizing them once when one of those weights takes int8 activations.
    void prepare_input(const float* x, size_t cols, size_t n, std::initializer_list<const tensor_view*> consumers);
    // y[t * rows + r] = W x_t for the prepared input.
    void matmul(const tensor_view& w, size_t n, float* y);
    void attention(size_t layer, size_t n, int32_t pos);
    // Decode attention of one token, each KV head's keys split in chunks across threads.
    void attention_split(size_t layer, int32_t pos, size_t chunks);

    std::shared_ptr<const model> model_;
    llama_config config_;
    thread_pool& pool_;
    const kernels::kernel_table& kernels_;
    int32_t context_;
    size_t max_batch_;

    kv_cache cache_;
    // Activations of one batch step, [token][width].
    std::vector<float> x_, xb_, q_, k_, v_, att_out_, gate_, up_;
    std::vector<float> att_scratch_;                  // per thread: attention_scratch_floats(head_dim)
    std::vector<float> part_out_, part_max_, part_sum_;  // split decode partials
    std::vector<float> rope_cos_, rope_sin_;  // [token][head_dim / 2]
    std::vector<std::byte> input_q_;          // quantized activations, see kernels.hpp
    const float* input_f32_ = nullptr;        // the prepared input, f32
    size_t input_cols_ = 0;
    std::vector<float> logits_;               // [max_batch or 1][vocab]
};

}  // namespace kiln
