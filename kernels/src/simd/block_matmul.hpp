// Row/token loops shared by every ISA's block-type matmul: decode walks rows with a 1-token
// kernel; prefill takes rows in chunks that stay in L2 and feeds each weight row to tiles of
// up to 4 tokens, so every unpacked weight block is used 4 times.
#pragma once
#include <algorithm>
#include <cstddef>

#include "activations.hpp"

namespace kiln::kernels {
namespace {

// Kernel provides: template <int N> static void run(const uint8_t* row, size_t cols,
//                                                   const act_row* tokens, float* out);
template <class Kernel>
void block_matmul(const void* weights, size_t row_bytes, size_t row_begin, size_t row_end, size_t cols,
                  const void* x, size_t n_tokens, float* y, size_t ldy) {
    const auto* base = static_cast<const uint8_t*>(weights);
    if (n_tokens == 1) {
        const act_row a = act_at(x, cols, 0);
        for (size_t r = row_begin; r < row_end; ++r) Kernel::template run<1>(base + r * row_bytes, cols, &a, y + r);
        return;
    }
    constexpr int tile = 4;
    constexpr size_t row_chunk = 16;
    for (size_t chunk = row_begin; chunk < row_end; chunk += row_chunk) {
        const size_t chunk_end = std::min(chunk + row_chunk, row_end);
        for (size_t t = 0; t < n_tokens; t += tile) {
            const size_t n = std::min<size_t>(tile, n_tokens - t);
            act_row acts[tile];
            for (size_t k = 0; k < n; ++k) acts[k] = act_at(x, cols, t + k);
            for (size_t r = chunk; r < chunk_end; ++r) {
                float out[tile];
                const uint8_t* row = base + r * row_bytes;
                switch (n) {
                    case 4: Kernel::template run<4>(row, cols, acts, out); break;
                    case 3: Kernel::template run<3>(row, cols, acts, out); break;
                    case 2: Kernel::template run<2>(row, cols, acts, out); break;
                    default: Kernel::template run<1>(row, cols, acts, out); break;
                }
                for (size_t k = 0; k < n; ++k) y[(t + k) * ldy + r] = out[k];
            }
        }
    }
}

}  // namespace
}  // namespace kiln::kernels
