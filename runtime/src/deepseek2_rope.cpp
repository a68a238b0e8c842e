// DeepSeek-V2 RoPE and YaRN (see deepseek2_rope.hpp), following HF's modeling_deepseek.py.
#include "kiln/runtime/deepseek2_rope.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace kiln {
namespace {

// The pair index at which a wavelength makes num_rotations turns over the original context
// (yarn_find_correction_dim; fractional).
double correction_dim(double num_rotations, double dim, double base, double original) {
    return dim * std::log(original / (num_rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(base));
}

}  // namespace

double yarn_get_mscale(double scale, double mscale) {
    if (scale <= 1.0) return 1.0;
    return 0.1 * mscale * std::log(scale) + 1.0;
}

double deepseek2_rope_frequency(const deepseek2_config& c, size_t pair) {
    const double dim = double(c.qk_rope_head_dim);
    const double extra = std::pow(c.rope_theta, -2.0 * double(pair) / dim);
    const deepseek2_yarn& y = c.yarn;
    if (!y.enabled()) return extra;
    const double inter = extra / y.factor;
    const double original = double(y.original_context_length);
    double low = std::floor(correction_dim(y.beta_fast, dim, c.rope_theta, original));
    double high = std::ceil(correction_dim(y.beta_slow, dim, c.rope_theta, original));
    low = std::max(low, 0.0);
    high = std::min(high, dim - 1);
    if (low == high) high += 0.001;  // as yarn_linear_ramp_mask: avoid a division by zero
    const double ramp = std::clamp((double(pair) - low) / (high - low), 0.0, 1.0);
    // HF: inv_freq_mask = 1 - ramp; inv_freq = inter * (1 - mask) + extra * mask.
    const double mask = 1.0 - ramp;
    return inter * (1.0 - mask) + extra * mask;
}

void deepseek2_rope_angles(const deepseek2_config& c, size_t pos, float* cos, float* sin) {
    const double m = c.yarn.enabled()
                         ? yarn_get_mscale(c.yarn.factor, c.yarn.mscale) / yarn_get_mscale(c.yarn.factor, c.yarn.mscale_all_dim)
                         : 1.0;
    for (size_t i = 0; i < c.qk_rope_head_dim / 2; ++i) {
        // HF computes the angle in f32 (t * inv_freq with both f32); double here is closer to
        // the true angle and is what both kiln passes share.
        const double angle = double(pos) * deepseek2_rope_frequency(c, i);
        cos[i] = float(std::cos(angle) * m);
        sin[i] = float(std::sin(angle) * m);
    }
}

float deepseek2_softmax_scale(const deepseek2_config& c) {
    double scale = 1.0 / std::sqrt(double(c.qk_head_dim()));
    if (c.yarn.enabled() && c.yarn.mscale_all_dim != 0) {
        const double m = yarn_get_mscale(c.yarn.factor, c.yarn.mscale_all_dim);
        scale *= m * m;
    }
    return float(scale);
}

}  // namespace kiln
