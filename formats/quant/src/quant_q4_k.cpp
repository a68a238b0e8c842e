// Reference q4_k: 256-element super-blocks, per-32 6-bit scales and mins found by a small
// least-squares search, then the scales themselves quantized against f16 super scales.
#include <algorithm>
#include <cmath>

#include "kiln/quant/quant.hpp"

namespace kiln::quant {
namespace {

constexpr size_t sub_elems = 32;
constexpr size_t sub_blocks = q4_k_elems / sub_elems;

int quantize_q4(float x, float scale, float min) {
    if (scale == 0.0f) return 0;
    const float q = std::nearbyint((x + min) / scale);
    return int(std::fmax(0.0f, std::fmin(15.0f, q)));
}

float sub_error(const float* x, float scale, float min) {
    float err = 0.0f;
    for (size_t i = 0; i < sub_elems; ++i) {
        const float e = x[i] - (scale * float(quantize_q4(x[i], scale, min)) - min);
        err += e * e;
    }
    return err;
}

struct scale_min {
    float scale;
    float min;  // >= 0: the sub-block's values are reconstructed as scale * q - min
};

// Searches the (scale, min) of one sub-block: for each candidate grid spacing the codes are
// fixed, then scale and offset refit by least squares (a 2x2 normal system), and the fit with
// the lowest squared error wins. The plain min/max fit is the first candidate, so the search
// never does worse than it.
scale_min fit_sub_block(const float* x) {
    float lo = 0.0f, hi = x[0];
    for (size_t i = 0; i < sub_elems; ++i) lo = std::fmin(lo, x[i]), hi = std::fmax(hi, x[i]);
    if (hi <= lo) return {0.0f, -lo};
    scale_min best{(hi - lo) / 15.0f, -lo};
    float best_err = sub_error(x, best.scale, best.min);
    for (int step = -10; step <= 10; ++step) {
        const float inv = (15.0f + 0.1f * float(step)) / (hi - lo);
        double sq = 0, sqq = 0, sx = 0, sxq = 0;
        for (size_t i = 0; i < sub_elems; ++i) {
            const float q = std::fmax(0.0f, std::fmin(15.0f, std::nearbyint(inv * (x[i] - lo))));
            sq += q, sqq += double(q) * q, sx += x[i], sxq += double(x[i]) * q;
        }
        const double n = double(sub_elems);
        const double det = n * sqq - sq * sq;
        if (det <= 0) continue;
        double scale = (n * sxq - sq * sx) / det;
        double offset = (sx - scale * sq) / n;  // x ~ scale * q + offset
        if (offset > 0) offset = 0, scale = sqq > 0 ? sxq / sqq : 0;
        if (scale <= 0) continue;
        const scale_min candidate{float(scale), float(-offset)};
        const float err = sub_error(x, candidate.scale, candidate.min);
        if (err < best_err) best_err = err, best = candidate;
    }
    return best;
}

void pack6(uint8_t* packed, const uint8_t* values) {
    uint64_t bits = 0;
    for (unsigned j = 0; j < sub_blocks; ++j) bits |= uint64_t(values[j] & 63u) << (6 * j);
    for (unsigned b = 0; b < 6; ++b) packed[b] = uint8_t(bits >> (8 * b));
}

}  // namespace

void quantize_row_q4_k(const float* src, void* dst, size_t n) {
    auto* blocks = static_cast<q4_k_block*>(dst);
    for (size_t b = 0; b < n / q4_k_elems; ++b) {
        const float* x = src + b * q4_k_elems;
        q4_k_block& out = blocks[b];
        scale_min fits[sub_blocks];
        float max_scale = 0.0f, max_min = 0.0f;
        for (size_t j = 0; j < sub_blocks; ++j) {
            fits[j] = fit_sub_block(x + j * sub_elems);
            max_scale = std::fmax(max_scale, fits[j].scale);
            max_min = std::fmax(max_min, fits[j].min);
        }
        out.d = f32_to_f16(max_scale / 63.0f);
        out.dmin = f32_to_f16(max_min / 63.0f);
        const float d = f16_to_f32(out.d), dmin = f16_to_f32(out.dmin);
        uint8_t sc[sub_blocks], mn[sub_blocks];
        for (size_t j = 0; j < sub_blocks; ++j) {
            sc[j] = uint8_t(d > 0 ? std::min(63.0f, std::nearbyint(fits[j].scale / d)) : 0);
            mn[j] = uint8_t(dmin > 0 ? std::min(63.0f, std::nearbyint(fits[j].min / dmin)) : 0);
        }
        pack6(out.scales, sc);
        pack6(out.scales + 6, mn);
        // Codes are chosen against the scales as stored, not the unrounded fits.
        uint8_t codes[q4_k_elems];
        for (size_t j = 0; j < sub_blocks; ++j) {
            const float scale = d * float(sc[j]), min = dmin * float(mn[j]);
            for (size_t i = 0; i < sub_elems; ++i)
                codes[j * sub_elems + i] = uint8_t(quantize_q4(x[j * sub_elems + i], scale, min));
        }
        for (size_t j = 0; j < sub_blocks; ++j)
            for (size_t i = 0; i < 16; ++i)
                out.q[16 * j + i] = uint8_t(codes[32 * j + i] | (codes[32 * j + 16 + i] << 4));
    }
}

void dequantize_row_q4_k(const void* src, float* dst, size_t n) {
    const auto* blocks = static_cast<const q4_k_block*>(src);
    for (size_t b = 0; b < n / q4_k_elems; ++b) {
        const q4_k_block& in = blocks[b];
        const float d = f16_to_f32(in.d), dmin = f16_to_f32(in.dmin);
        float* out = dst + b * q4_k_elems;
        for (unsigned j = 0; j < sub_blocks; ++j) {
            const float scale = d * float(unpack6(in.scales, j));
            const float min = dmin * float(unpack6(in.scales + 6, j));
            for (size_t i = 0; i < 16; ++i) {
                out[32 * j + i] = scale * float(in.q[16 * j + i] & 15) - min;
                out[32 * j + 16 + i] = scale * float(in.q[16 * j + i] >> 4) - min;
            }
        }
    }
}

}  // namespace kiln::quant
