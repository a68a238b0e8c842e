// What the GPU forward passes (cuda_llama.cpp, cuda_deepseek2.cpp) share: the device and its
// work stream, weight upload, the scratch buffers, batch splitting, the decode step's CUDA graph
// and the logits download. A model fills in its weights and activations and enqueue(); all
// device memory is owned here, so the destructor waits for the stream before any of it is freed.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "device_buffer.hpp"
#include "kiln/cuda/cuda_backend.hpp"
#include "launch.hpp"

namespace kiln::cuda::detail {

class model_runner : public cuda_model {
public:
    ~model_runner() override;

    std::span<const float> forward(int32_t token, int32_t pos) override;
    std::span<const float> forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits) override;
    int32_t context_length() const override { return context_; }
    int32_t vocab_size() const override { return int32_t(vocab_); }

    const device_info& device() const override { return device_; }
    size_t weight_bytes() const override { return weight_bytes_; }
    size_t cache_bytes() const override { return cache_bytes_; }
    size_t other_bytes() const override { return other_bytes_; }

protected:
    explicit model_runner(std::shared_ptr<const model> m) : model_(std::move(m)) {}

    // Throws unless device `ordinal` can run kiln; makes it current and describes it.
    void open_device(int ordinal);
    // Context, batch size, graphs and decode splits from the options (model_context when the
    // options leave the context at 0).
    void configure(const cuda_options& options, uint64_t model_context, uint64_t vocab);
    // Allocates the logits, the attention partials, the token and position slots and their
    // pinned host twins; waits for every upload and creates the work stream. Call last.
    void finish_setup(size_t attention_scratch_floats);

    device_weight upload_matrix(const tensor_view& t);
    weight_stack upload_stack(const tensor_view& t);
    const float* upload_f32(const tensor_view* t);
    // The angle tables [position][rotated dims / 2] into rope_cos_ / rope_sin_.
    void upload_rope(const std::vector<float>& cos, const std::vector<float>& sin);
    device_buffer& scratch(size_t bytes, const char* what);
    float* floats(size_t count, const char* what) { return scratch(count * sizeof(float), what).get<float>(); }
    // A (KV or latent) cache buffer, counted in cache_bytes().
    device_buffer& cache(size_t bytes, const char* what);

    // y = W x on the work stream: a matvec for one token, a GEMM for more.
    void project(const device_weight& w, const float* x, size_t n, float* y);
    // Enqueues the whole forward pass for n tokens already in d_tokens_/d_pos_; the logits of
    // the last token (or all n) land in logits_.
    virtual void enqueue(size_t n, bool all_logits) = 0;

    std::shared_ptr<const model> model_;
    int32_t context_ = 0;
    size_t max_batch_ = 0;
    size_t splits_ = 1;  // decode attention splits
    cudaStream_t stream_ = nullptr;

    device_buffer rope_cos_, rope_sin_;
    float *logits_ = nullptr, *att_scratch_ = nullptr;
    int32_t *d_tokens_ = nullptr, *d_pos_ = nullptr;

private:
    // One step of at most max_batch tokens; returns the host logits.
    std::span<const float> step(const int32_t* tokens, size_t n, int32_t pos, bool all_logits);

    uint64_t vocab_ = 0;
    bool use_graphs_ = true;
    device_info device_;
    cudaGraphExec_t decode_graph_ = nullptr;

    std::vector<device_buffer> weights_;  // every uploaded tensor
    std::map<const tensor_view*, device_weight> uploaded_;  // a tied classifier is uploaded once
    std::vector<device_buffer> caches_, activations_;
    size_t weight_bytes_ = 0, cache_bytes_ = 0, other_bytes_ = 0;
    pinned_buffer h_tokens_, h_logits_;
    std::vector<float> gathered_;  // all_logits rows of a prompt longer than max_batch
};

}  // namespace kiln::cuda::detail
