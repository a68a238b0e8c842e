// RoPE angles of a model (see rope.hpp). Frequencies follow Hugging Face's rope_init functions
// (default, linear, llama3) so imported long-context models see the positions they were trained on.
#include "kiln/runtime/rope.hpp"

#include <cmath>
#include <numbers>

namespace kiln {

double rope_frequency(const llama_config& c, size_t pair) {
    // Same expression as kernels::rope_angles, so unscaled models keep bit-identical angles.
    const double base = std::pow(c.rope_theta, -2.0 * double(pair) / double(c.head_dim));
    const llama_rope_scaling& s = c.rope_scaling;
    switch (s.type) {
        case rope_scaling_type::none:
            return base;
        case rope_scaling_type::linear:
            return base / s.factor;
        case rope_scaling_type::llama3: {
            const double original = double(s.original_context_length);
            const double wavelength = 2.0 * std::numbers::pi / base;
            if (wavelength < original / s.high_freq_factor) return base;   // high frequencies: local detail, kept
            if (wavelength > original / s.low_freq_factor) return base / s.factor;  // low: stretched
            const double smooth = (original / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
            return (1.0 - smooth) * base / s.factor + smooth * base;
        }
    }
    return base;
}

void rope_angles_for(const llama_config& c, size_t pos, float* cos, float* sin) {
    for (size_t i = 0; i < c.head_dim / 2; ++i) {
        const double angle = double(pos) * rope_frequency(c, i);
        cos[i] = float(std::cos(angle));
        sin[i] = float(std::sin(angle));
    }
}

}  // namespace kiln
