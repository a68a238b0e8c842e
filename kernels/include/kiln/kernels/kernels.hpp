// Public entry points of the compute kernels: the per-ISA dispatch table and calls through it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "kiln/formats/tensor_type.hpp"
#include "kiln/kernels/attention.hpp"

namespace kiln::kernels {

// ---------------------------------------------------------------------------------------------
// Activation contract of the matrix kernels.
//
// f32, f16 and bf16 weights multiply f32 activations directly: token t is x + t * cols floats.
//
// q8_0, q4_0 and q4_k weights multiply activations quantized once per op by
// quantize_activations: each token becomes one record of quantized_row_bytes(cols) bytes,
//     int8  q[cols]          values in blocks of 32, q = round_even(x / d), |q| <= 127
//     int8  q_paired[cols]   the same values with each pair of blocks (2p, 2p+1) stored as
//                            halves [2p: 0..15][2p+1: 0..15][2p: 16..31][2p+1: 16..31] (an odd
//                            last block as is): one 256-bit register of q4_0 nibbles then
//                            holds two blocks with no shuffle
//     int16 q16[cols]        the same x to 16 bits, q16 = round_even(x * 256 / d), |q16| <= 32512:
//                            what q8_0 weights multiply. Their own rounding error is as large as
//                            int8 activations', so a q8_0 x q8 product carries both; against q16
//                            q8_0 loses no more than its weights do (top-1 agreement of stories260K
//                            98.4% -> 99%), and on x86 the int16 dot costs no more than int8's
//                            sign-trick dot.
//     float d[cols / 32]     per-block scale d = max|x| / 127 (q16's scale is d / 256)
//     float ds[cols / 32]    per-block d * sum(q): lets 4-bit kernels fold the weight offset/min
//                            into one multiply per block instead of touching every element
// padded to a multiple of 64 bytes. cols must be a multiple of 32 (of 256 for q4_k weights).
// ---------------------------------------------------------------------------------------------
inline constexpr size_t activation_block = 32;
constexpr size_t quantized_row_bytes(size_t cols) {
    return (4 * cols + 2 * sizeof(float) * (cols / activation_block) + 63) / 64 * 64;
}
// True for weight types whose matrix kernels take quantize_activations output.
constexpr bool uses_quantized_activations(tensor_type type) {
    return type == tensor_type::q8_0 || type == tensor_type::q4_0 || type == tensor_type::q4_k;
}

// y[t * ldy + r] = sum_c W[r][c] * x_t[c] for r in [row_begin, row_end), t in [0, n_tokens).
// weights points at row 0 of a plain-layout (layout 0) matrix of `cols` columns, rows
// row_bytes(type, cols) apart; the runtime splits [0, rows) between threads as it likes.
using matmul_fn = void (*)(const void* weights, size_t row_begin, size_t row_end, size_t cols,
                           const void* x, size_t n_tokens, float* y, size_t ldy);

enum class rope_style : uint32_t {
    interleaved,  // rotate pairs (2i, 2i+1) of each head (llama2.c, GGUF llama)
    neox,         // rotate pairs (i, i + head_dim/2) of each head (GPT-NeoX, Qwen2)
};

// One instruction set's kernels. All pointers are non-null. No kernel allocates, locks or
// throws; sizes may be any value >= 0 unless a comment says otherwise.
struct kernel_table {
    const char* isa;  // "scalar", "avx2", "avx512", "avx512vnni", "avx512bf16", "neon"

    // x: n_tokens rows of cols floats, ldx floats apart; dst: n_tokens records (see above).
    void (*quantize_activations)(const float* x, size_t ldx, size_t cols, size_t n_tokens, void* dst);
    matmul_fn matmul_f32;
    matmul_fn matmul_f16;
    matmul_fn matmul_bf16;
    matmul_fn matmul_q8_0;
    matmul_fn matmul_q4_0;
    matmul_fn matmul_q4_k;

    float (*dot)(const float* a, const float* b, size_t n);
    // out = x / sqrt(mean(x^2) + eps) * weight; out may alias x.
    void (*rmsnorm)(const float* x, const float* weight, float eps, float* out, size_t n);
    // Rotates x (n_heads heads of head_dim, head_dim even) in place by the angles of one
    // position: pair i of every head turns by the angle whose cos[i], sin[i] (i < head_dim/2)
    // rope_angles computed. Pair i is (2i, 2i+1) for interleaved, (i, i + head_dim/2) for neox.
    void (*rope)(float* x, size_t n_heads, size_t head_dim, const float* cos, const float* sin,
                 rope_style style);
    // out = silu(gate) * up, silu(g) = g / (1 + exp(-g)); out may alias gate or up.
    void (*swiglu)(const float* gate, const float* up, float* out, size_t n);
    // x = exp(x - max) / sum, in place; n >= 1; -inf entries (masked) become 0.
    void (*softmax)(float* x, size_t n);
    void (*add)(const float* a, const float* b, float* out, size_t n);    // out may alias a or b
    void (*scale)(const float* x, float factor, float* out, size_t n);    // out may alias x
    void (*f16_to_f32)(const uint16_t* src, float* dst, size_t n);
    void (*f32_to_f16)(const float* src, uint16_t* dst, size_t n);     // round to nearest even
    // Tiled online-softmax attention of one KV head's query group (see attention.hpp).
    void (*attention)(const attention_args& args);
    // true: attention over a bf16 cache (bf16_attention_applies) rounds q and p to bf16 and
    // multiplies in bf16 (sums stay f32), twice the multiply rate of f32 FMAs; false: every
    // cache type is multiplied in f32.
    bool attention_bf16_products;
};

// The table chosen once, on first use, from the CPU's features (the best it runs), or forced
// by the environment variable KILN_ISA=scalar|avx2|avx512|neon. Throws std::runtime_error
// when KILN_ISA names an unknown ISA, one not built in, or one this CPU (or its OS) lacks.
const kernel_table& active();
std::string_view active_isa();
// Every table built in that this CPU can run, scalar first (tests and benchmarks loop on it).
std::span<const kernel_table* const> available();
// nullptr when not built in or not runnable here.
const kernel_table* find(std::string_view isa);

// The table's matrix kernel for a weight type.
matmul_fn matmul_for(const kernel_table& table, tensor_type type);

// cos[i], sin[i] of angle pos * theta^(-2i / head_dim), i < head_dim / 2 (computed in double).
void rope_angles(size_t pos, size_t head_dim, double theta, float* cos, float* sin);

// Convenience calls through active().
void quantize_activations(const float* x, size_t ldx, size_t cols, size_t n_tokens, void* dst);
// Decode: one token, y[r] for r in [row_begin, row_end).
void matvec_rows(tensor_type type, const void* weights, size_t row_begin, size_t row_end, size_t cols,
                 const void* x, float* y);
// Prefill: n_tokens tokens, Y[t * ldy + r].
void gemm_rows(tensor_type type, const void* weights, size_t row_begin, size_t row_end, size_t cols,
               const void* x, size_t n_tokens, float* y, size_t ldy);

}  // namespace kiln::kernels
