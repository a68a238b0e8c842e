// Internal: what the fast forward passes (fast_llama, fast_deepseek2) share: work-split
// constants, the cache-blocked matrix loop, and the checks and step loop of forward_batch.
#pragma once
#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "kiln/formats/error.hpp"
#include "kiln/kernels/kernels.hpp"
#include "kiln/runtime/thread_pool.hpp"

namespace kiln::fast {

// Rows per parallel chunk: a multiple of every interleave a layout may use.
inline constexpr size_t row_grain = 16;
// Prefill GEMM blocking: rows x tokens per kernel call (see blocked_rows).
inline constexpr size_t gemm_row_block = 64, gemm_token_block = 64;
// Query rows (tokens x heads sharing a KV head) per prefill attention work item.
inline constexpr size_t attention_rows = 64;
// Decode attention splits a head's keys in chunks of at least min_split_keys positions.
inline constexpr size_t min_split_keys = 256, max_split_chunks = 8;

// y[t * ldy + r] = W x_t for rows [row_begin, row_end) and n tokens whose inputs are x_stride
// bytes apart. Long batches go in cache-sized pieces: a block of weight rows stays in L2 while
// it meets every token chunk, and a token chunk's activations stay in L2 for the block.
inline void blocked_rows(kernels::matmul_fn fn, const void* w, size_t row_begin, size_t row_end, size_t cols,
                         const std::byte* x, size_t x_stride, size_t n, float* y, size_t ldy) {
    for (size_t r0 = row_begin; r0 < row_end; r0 += gemm_row_block) {
        const size_t r1 = std::min(row_end, r0 + gemm_row_block);
        for (size_t t0 = 0; t0 < n; t0 += gemm_token_block)
            fn(w, r0, r1, cols, x + t0 * x_stride, std::min(gemm_token_block, n - t0), y + t0 * ldy, ldy);
    }
}

// The same split across the pool's threads by rows.
inline void parallel_matmul(const thread_pool& pool, kernels::matmul_fn fn, const void* w, size_t rows, size_t cols,
                            const std::byte* x, size_t x_stride, size_t n, float* y, size_t ldy) {
    pool.parallel_rows(rows, row_grain, cols * n, [&](size_t begin, size_t end) {
        blocked_rows(fn, w, begin, end, cols, x, x_stride, n, y, ldy);
    });
}

// forward_batch's argument checks: positions inside the context, token ids inside the vocabulary.
inline void check_batch(std::span<const int32_t> tokens, int32_t pos, int32_t context, uint64_t vocab) {
    if (tokens.empty()) throw error("forward_batch: no tokens");
    if (pos < 0 || int64_t(pos) + int64_t(tokens.size()) > context)
        throw error("positions " + std::to_string(pos) + ".." + std::to_string(pos + int64_t(tokens.size()) - 1) +
                    " are outside the context of " + std::to_string(context));
    for (int32_t t : tokens)
        if (t < 0 || uint64_t(t) >= vocab) throw error("token id " + std::to_string(t) + " is out of range");
}

// Runs tokens through step(tokens, n, pos, all_logits, logits_out) in steps of max_batch inside
// the pool; logits_out is null for prompt steps whose logits nobody reads. Returns the logits.
template <class Step>
std::span<const float> run_steps(thread_pool& pool, std::span<const int32_t> tokens, int32_t pos, size_t max_batch,
                                 size_t vocab, bool all_logits, std::vector<float>& logits, Step&& step) {
    if (all_logits && logits.size() < tokens.size() * vocab) logits.resize(tokens.size() * vocab);
    pool.run([&] {
        for (size_t done = 0; done < tokens.size(); done += max_batch) {
            const size_t n = std::min(max_batch, tokens.size() - done);
            float* out = all_logits ? logits.data() + done * vocab : logits.data();
            const bool last_step = done + n == tokens.size();
            step(tokens.data() + done, n, pos + int32_t(done), all_logits, all_logits || last_step ? out : nullptr);
        }
    });
    return std::span<const float>(logits.data(), all_logits ? tokens.size() * vocab : vocab);
}

}  // namespace kiln::fast
