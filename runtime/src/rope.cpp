// RoPE angles of a model (see rope.hpp).
#include "kiln/runtime/rope.hpp"

#include "kiln/kernels/kernels.hpp"

namespace kiln {

void rope_angles_for(const llama_config& c, size_t pos, float* cos, float* sin) {
    kernels::rope_angles(pos, c.head_dim, c.rope_theta, cos, sin);
}

}  // namespace kiln
