// The CUDA backend (built with -DKILN_CUDA=ON): the same language_model interface as the CPU
// passes, so generation, chat, perplexity and bench run unchanged on an NVIDIA GPU. Plain C++
// only: no CUDA header or type reaches the code that includes this.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kiln/runtime/language_model.hpp"
#include "kiln/runtime/model.hpp"

namespace kiln::cuda {

// Empty when device `ordinal` can run kiln, else one line saying why not (no driver, no device,
// too old a GPU, ...).
std::string unavailable_reason(int ordinal = 0);

struct device_info {
    std::string name;        // e.g. "NVIDIA H100 80GB HBM3"
    int major = 0, minor = 0;  // compute capability
    size_t total_bytes = 0, free_bytes = 0;
    int runtime_version = 0, driver_version = 0;  // e.g. 13000
};
// Throws kiln::error when the device cannot be queried (check unavailable_reason first).
device_info describe_device(int ordinal = 0);

struct cuda_options {
    int32_t context_length = 0;  // 0 = the model's own
    int32_t max_batch = 512;     // tokens per prefill step
    int device = 0;
    bool graphs = true;  // replay decode steps as one captured CUDA graph
};

// A model resident on the GPU: weights uploaded once in their .kiln types, an f16 KV cache (for
// deepseek2 the f16 latent MLA cache, kv_lora_rank + qk_rope_head_dim per layer and position).
class cuda_model : public language_model {
public:
    virtual const device_info& device() const = 0;
    virtual size_t weight_bytes() const = 0;  // device memory for weights
    virtual size_t cache_bytes() const = 0;   // for the KV (or latent) cache
    virtual size_t other_bytes() const = 0;   // activations, logits, RoPE tables
};

// llama-architecture and deepseek2 (MLA + mixture of experts) models. Throws kiln::error when the
// device is unusable, memory runs out, or the model's shape is one the kernels do not take.
std::unique_ptr<cuda_model> make_cuda_model(std::shared_ptr<const model> m, const cuda_options& options = {});

}  // namespace kiln::cuda
