// RoPE angles of one position for a model: the base frequencies from rope_theta, adjusted by the
// model's rope scaling (linear or llama3). Shared by the reference and the fast pass, so both
// rotate by exactly the same angles.
#pragma once
#include <cstddef>

#include "kiln/formats/model_config.hpp"

namespace kiln {

// cos[i], sin[i] of pair i < head_dim / 2 at position pos. Pair i turns by pos * f_i where
// f_i = rope_theta^(-2i/head_dim), then:
//   linear: f_i / factor (every position divided by factor);
//   llama3: wavelength 2*pi/f_i below original/high_freq_factor keeps f_i, above
//           original/low_freq_factor becomes f_i / factor, and in between blends the two with
//           smooth = (original/wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor).
void rope_angles_for(const llama_config& c, size_t pos, float* cos, float* sin);

// The scaled frequency f_i of pair i (what rope_angles_for multiplies pos by).
double rope_frequency(const llama_config& c, size_t pair);

}  // namespace kiln
