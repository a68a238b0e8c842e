// DeepSeek-V2's decoupled RoPE with YaRN scaling: the angles of the rope part of queries and of
// the one shared rope key, and the softmax scale that YaRN's attention temperature adjusts.
// Shared by the reference and the fast pass, so both see exactly the same numbers.
#pragma once
#include <cstddef>

#include "kiln/formats/deepseek2_config.hpp"

namespace kiln {

// Frequency of pair i < qk_rope_head_dim / 2, as DeepseekV2YarnRotaryEmbedding computes it:
// base f_i = theta^(-2i/d); with YaRN, pairs below the correction range keep f_i
// (extrapolation), pairs above use f_i / factor (interpolation), with a linear ramp between.
double deepseek2_rope_frequency(const deepseek2_config& c, size_t pair);

// cos[i], sin[i] of pair i at position pos, both multiplied by YaRN's magnitude correction
// get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim) (1 without YaRN), as HF scales
// its cos/sin caches.
void deepseek2_rope_angles(const deepseek2_config& c, size_t pos, float* cos, float* sin);

// 1/sqrt(qk_nope + qk_rope), times get_mscale(factor, mscale_all_dim)^2 when YaRN sets mscale_all_dim.
float deepseek2_softmax_scale(const deepseek2_config& c);

// YaRN's get_mscale: 1 for scale <= 1, else 0.1 * mscale * ln(scale) + 1.
double yarn_get_mscale(double scale, double mscale);

}  // namespace kiln
