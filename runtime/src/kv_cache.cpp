// The KV cache (see kv_cache.hpp).
#include "kiln/runtime/kv_cache.hpp"

#include <new>

#include "kiln/formats/error.hpp"

namespace kiln {

kv_cache::kv_cache(size_t n_layers, size_t n_kv_heads, size_t head_dim, size_t context, kernels::kv_type type)
    : n_layers_(n_layers), n_kv_heads_(n_kv_heads), head_dim_(head_dim), context_(context), type_(type),
      run_bytes_(kernels::kv_run_bytes(type, head_dim, context)), bytes_(n_layers * n_kv_heads * 2 * run_bytes_) {
    if (context == 0) throw error("the KV cache needs a context of at least one position");
    // Zeroed: the kernels read whole tiles, so the columns not yet written must hold numbers.
    data_.reset(new (std::align_val_t(64)) std::byte[bytes_]());
}

size_t kv_cache::bytes_per_position() const {
    return n_layers_ * n_kv_heads_ * 2 * kernels::kv_tile_bytes(type_, head_dim_) / kernels::kv_tile;
}

void kv_cache::store(size_t layer, size_t pos, const float* key, const float* value) {
    for (size_t h = 0; h < n_kv_heads_; ++h) {
        std::byte* run = data_.get() + run_offset(layer, h);
        kernels::kv_store(type_, head_dim_, pos, key + h * head_dim_, value + h * head_dim_, run, run + run_bytes_);
    }
}

}  // namespace kiln
