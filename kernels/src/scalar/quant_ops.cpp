// Scalar reference of activation quantization and the integer matmuls of q8_0, q4_0 and q4_k.
#include <cmath>

#include "activations.hpp"
#include "kiln/quant/blocks.hpp"
#include "kiln/quant/half.hpp"
#include "scalar/scalar_ops.hpp"

namespace kiln::kernels::scalar {

using quant::f16_to_f32;

void quantize_activations(const float* x, size_t ldx, size_t cols, size_t n_tokens, void* dst) {
    for (size_t t = 0; t < n_tokens; ++t) {
        const act_row_out out = act_out_at(dst, cols, t);
        for (size_t b = 0; b < cols / activation_block; ++b) {
            const float* xb = x + t * ldx + b * activation_block;
            float amax = 0.0f;
            for (size_t i = 0; i < activation_block; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
            // Same operation order as the SIMD versions, so every ISA produces identical bytes.
            const float d = amax / 127.0f;
            const float inv = amax != 0.0f ? 1.0f / d : 0.0f;
            const float inv16 = inv * 256.0f;  // exact: a power of two
            int sum = 0;
            for (size_t i = 0; i < activation_block; ++i) {
                const int q = int(std::nearbyint(xb[i] * inv));
                out.q[b * activation_block + i] = int8_t(q);
                out.qp[paired_index(b, i, cols / activation_block)] = int8_t(q);
                out.q16[b * activation_block + i] = int16_t(std::nearbyint(xb[i] * inv16));
                sum += q;
            }
            out.d[b] = d;
            out.ds[b] = d * float(sum);
        }
    }
}

namespace {

// Shared row/token loops; row_dot(row_index, act_row) gives one output.
template <typename RowDot>
void matmul_blocks(const RowDot& row_dot, size_t row_begin, size_t row_end, size_t cols, const void* x,
                   size_t n_tokens, float* y, size_t ldy) {
    for (size_t t = 0; t < n_tokens; ++t) {
        const act_row a = act_at(x, cols, t);
        for (size_t r = row_begin; r < row_end; ++r) y[t * ldy + r] = row_dot(r, a);
    }
}

}  // namespace

void matmul_q8_0(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                 float* y, size_t ldy) {
    const size_t nb = cols / quant::q8_0_elems;
    auto row_dot = [&](size_t r, const act_row& a) {
        const void* row = static_cast<const uint8_t*>(w) + r * nb * sizeof(quant::q8_0_block);
        float sum = 0.0f;
        for (size_t b = 0; b < nb; ++b) {
            const quant::q8_0_block blk = quant::load_grouped<quant::q8_0_block>(row, nb, b);
            int isum = 0;
            for (size_t i = 0; i < 32; ++i) isum += int(blk.q[i]) * int(a.q16[b * 32 + i]);
            sum += f16_to_f32(blk.d) * (a.d[b] * (1.0f / 256.0f)) * float(isum);
        }
        return sum;
    };
    matmul_blocks(row_dot, row_begin, row_end, cols, x, n_tokens, y, ldy);
}

void matmul_q4_0(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                 float* y, size_t ldy) {
    const size_t nb = cols / quant::q4_0_elems;
    auto row_dot = [&](size_t r, const act_row& a) {
        const void* row = static_cast<const uint8_t*>(w) + r * nb * sizeof(quant::q4_0_block);
        float sum = 0.0f;
        for (size_t b = 0; b < nb; ++b) {
            const quant::q4_0_block blk = quant::load_grouped<quant::q4_0_block>(row, nb, b);
            const int8_t* aq = a.q + b * 32;
            int isum = 0;
            for (size_t j = 0; j < 16; ++j)
                isum += ((blk.q[j] & 15) - 8) * aq[j] + ((blk.q[j] >> 4) - 8) * aq[j + 16];
            sum += f16_to_f32(blk.d) * a.d[b] * float(isum);
        }
        return sum;
    };
    matmul_blocks(row_dot, row_begin, row_end, cols, x, n_tokens, y, ldy);
}

void matmul_q4_k(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                 float* y, size_t ldy) {
    const auto* blocks = static_cast<const quant::q4_k_block*>(w);
    const size_t nb = cols / quant::q4_k_elems;
    auto row_dot = [&](size_t r, const act_row& a) {
        float sum = 0.0f;
        for (size_t b = 0; b < nb; ++b) {
            const quant::q4_k_block& blk = blocks[r * nb + b];
            const float d = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
            for (unsigned j = 0; j < 8; ++j) {
                const uint8_t* q = blk.q + 16 * j;  // byte i: element i | element i + 16
                const size_t ab = b * 8 + j;        // activation block
                const int8_t* aq = a.q + ab * 32;
                int isum = 0;
                for (size_t i = 0; i < 16; ++i) isum += (q[i] & 15) * aq[i] + (q[i] >> 4) * aq[i + 16];
                const float sc = float(quant::unpack6(blk.scales, j));
                const float mn = float(quant::unpack6(blk.scales + 6, j));
                sum += d * sc * a.d[ab] * float(isum) - dmin * mn * a.ds[ab];
            }
        }
        return sum;
    };
    matmul_blocks(row_dot, row_begin, row_end, cols, x, n_tokens, y, ldy);
}

}  // namespace kiln::kernels::scalar
