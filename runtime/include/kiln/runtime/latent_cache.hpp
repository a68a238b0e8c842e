// The MLA cache of a deepseek2 model: per layer one key-only run (kernels' tile layout, see
// kiln/kernels/attention.hpp) of `context` positions, each position [c_kv (kv_lora_rank),
// k_rope (qk_rope_head_dim)]: the normalised latent and the rotated shared rope key. Attention
// reads values as the first kv_lora_rank elements of each key, so nothing else is stored.
// Allocated once, at construction.
#pragma once
#include <cstddef>
#include <memory>

#include "kiln/kernels/attention.hpp"

namespace kiln {

class latent_cache {
public:
    latent_cache(size_t n_layers, size_t width, size_t context, kernels::kv_type type);

    kernels::kv_type type() const { return type_; }
    size_t context() const { return context_; }
    size_t width() const { return width_; }
    size_t bytes() const { return bytes_; }
    // Bytes one more position of context costs over all layers:
    // width x n_layers x element size for f32 and f16 (width a multiple of 32 keeps tiles unpadded).
    size_t bytes_per_position() const;

    // Stores one position of one layer: `width` floats [c_kv, k_rope].
    void store(size_t layer, size_t pos, const float* latent);
    const void* keys(size_t layer) const { return data_.get() + layer * run_bytes_; }

private:
    struct aligned_delete {
        void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t(64)); }
    };
    size_t n_layers_, width_, context_;
    kernels::kv_type type_;
    size_t run_bytes_, bytes_;
    std::unique_ptr<std::byte[], aligned_delete> data_;
};

}  // namespace kiln
