// The MLA latent cache (see latent_cache.hpp).
#include "kiln/runtime/latent_cache.hpp"

#include <new>

#include "kiln/formats/error.hpp"

namespace kiln {

latent_cache::latent_cache(size_t n_layers, size_t width, size_t context, kernels::kv_type type)
    : n_layers_(n_layers), width_(width), context_(context), type_(type),
      run_bytes_(kernels::kv_run_bytes(type, width, context)), bytes_(n_layers * run_bytes_) {
    if (context == 0) throw error("the latent cache needs a context of at least one position");
    // Zeroed: the kernels read whole tiles, so the columns not yet written must hold numbers.
    data_.reset(new (std::align_val_t(64)) std::byte[bytes_]());
}

size_t latent_cache::bytes_per_position() const {
    return n_layers_ * kernels::kv_tile_bytes(type_, width_) / kernels::kv_tile;
}

void latent_cache::store(size_t layer, size_t pos, const float* latent) {
    kernels::kv_store(type_, width_, pos, latent, nullptr, data_.get() + layer * run_bytes_, nullptr);
}

}  // namespace kiln
