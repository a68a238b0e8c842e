// The x86 kernel table for one xsimd arch: float kernels from the xsimd templates, block
// kernels from the 256-bit integer code (included by avx2.cpp and avx512.cpp only).
#pragma once
#include "simd/attention.hpp"
#include "simd/block_matmul.hpp"
#include "simd/float_ops.hpp"
#include "x86/matmul_q4_0.hpp"
#include "x86/matmul_q4_k.hpp"
#include "x86/matmul_q8_0.hpp"
#include "x86/quantize_activations.hpp"

namespace kiln::kernels {
namespace {

template <class Kernel, size_t BlockElems, size_t BlockBytes>
void x86_block_matmul(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                      float* y, size_t ldy) {
    block_matmul<Kernel>(w, cols / BlockElems * BlockBytes, row_begin, row_end, cols, x, n_tokens, y, ldy);
}

template <class Arch>
kernel_table make_x86_table(const char* isa) {
    return kernel_table{
        isa,
        quantize_activations_x86,
        simd_matmul_f32<Arch>,
        simd_matmul_f16<Arch>,
        simd_matmul_bf16<Arch>,
        x86_block_matmul<q8_0_x86, quant::q8_0_elems, sizeof(quant::q8_0_block)>,
        x86_block_matmul<q4_0_x86, quant::q4_0_elems, sizeof(quant::q4_0_block)>,
        x86_block_matmul<q4_k_x86, quant::q4_k_elems, sizeof(quant::q4_k_block)>,
        simd_dot<Arch>,
        simd_rmsnorm<Arch>,
        simd_rope<Arch>,
        simd_swiglu<Arch>,
        simd_softmax<Arch>,
        simd_add<Arch>,
        simd_scale<Arch>,
        simd_f16_to_f32<Arch>,
        simd_f32_to_f16<Arch>,
        simd_attention<Arch>,
        false,
    };
}

}  // namespace
}  // namespace kiln::kernels
