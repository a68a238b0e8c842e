// The KV cache of a GQA model: per layer and KV head, a key run and a value run of
// `context` positions in the kernels' tile layout (kiln/kernels/attention.hpp), in f32, f16 or
// q8_0. Allocated once, at construction; its size never changes.
#pragma once
#include <cstddef>
#include <memory>

#include "kiln/kernels/attention.hpp"

namespace kiln {

class kv_cache {
public:
    kv_cache(size_t n_layers, size_t n_kv_heads, size_t head_dim, size_t context, kernels::kv_type type);

    kernels::kv_type type() const { return type_; }
    size_t context() const { return context_; }
    size_t bytes() const { return bytes_; }
    // Bytes one more position of context costs, over all layers and heads.
    size_t bytes_per_position() const;

    // Stores position pos of one layer: key and value are kv_dim floats (all KV heads).
    void store(size_t layer, size_t pos, const float* key, const float* value);
    const void* keys(size_t layer, size_t head) const { return data_.get() + run_offset(layer, head); }
    const void* values(size_t layer, size_t head) const { return data_.get() + run_offset(layer, head) + run_bytes_; }

private:
    size_t run_offset(size_t layer, size_t head) const { return (layer * n_kv_heads_ + head) * 2 * run_bytes_; }

    struct aligned_delete {
        void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t(64)); }
    };
    size_t n_layers_, n_kv_heads_, head_dim_, context_;
    kernels::kv_type type_;
    size_t run_bytes_, bytes_;
    std::unique_ptr<std::byte[], aligned_delete> data_;
};

}  // namespace kiln
