// RoPE angles of one position for a model: the base frequencies from rope_theta, adjusted by the
// model's rope scaling (none yet: see rope.cpp). Shared by the reference and the fast pass.
#pragma once
#include <cstddef>

#include "kiln/formats/model_config.hpp"

namespace kiln {

// cos[i], sin[i] of pair i < head_dim / 2 at position pos.
void rope_angles_for(const llama_config& c, size_t pos, float* cos, float* sin);

}  // namespace kiln
