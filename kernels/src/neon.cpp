// The neon instruction set (aarch64 Advanced SIMD; sdot when built with +dotprod): xsimd
// float kernels on neon64 batches, block kernels with NEON intrinsics.
#include "simd/float_ops.hpp"

namespace kiln::kernels {
namespace {

using neon_arch = xsimd::neon64;

template <>
struct half_io<neon_arch> {
    static fbatch<neon_arch> load_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
    static void store_f16(uint16_t* p, fbatch<neon_arch> v) {
        vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v)));
    }
    static fbatch<neon_arch> load_bf16(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
    static fbatch<neon_arch> load_i8(const int8_t* p) {
        int8_t four[8] = {p[0], p[1], p[2], p[3], 0, 0, 0, 0};
        return vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(four)))));
    }
};

}  // namespace
}  // namespace kiln::kernels

#include "neon/matmul_q4_0.hpp"
#include "simd/attention.hpp"
#include "neon/matmul_q4_k.hpp"
#include "neon/matmul_q8_0.hpp"
#include "neon/quantize_activations.hpp"
#include "simd/block_matmul.hpp"
#include "tables.hpp"

namespace kiln::kernels {
namespace {

template <class Kernel, size_t BlockElems, size_t BlockBytes>
void neon_block_matmul(const void* w, size_t row_begin, size_t row_end, size_t cols, const void* x, size_t n_tokens,
                       float* y, size_t ldy) {
    block_matmul<Kernel>(w, cols / BlockElems * BlockBytes, row_begin, row_end, cols, x, n_tokens, y, ldy);
}

}  // namespace

const kernel_table& neon_table() {
    static const kernel_table table{
        "neon",
        quantize_activations_neon,
        simd_matmul_f32<neon_arch>,
        simd_matmul_f16<neon_arch>,
        simd_matmul_bf16<neon_arch>,
        neon_block_matmul<q8_0_neon, quant::q8_0_elems, sizeof(quant::q8_0_block)>,
        neon_block_matmul<q4_0_neon, quant::q4_0_elems, sizeof(quant::q4_0_block)>,
        neon_block_matmul<q4_k_neon, quant::q4_k_elems, sizeof(quant::q4_k_block)>,
        simd_dot<neon_arch>,
        simd_rmsnorm<neon_arch>,
        simd_rope<neon_arch>,
        simd_swiglu<neon_arch>,
        simd_softmax<neon_arch>,
        simd_add<neon_arch>,
        simd_scale<neon_arch>,
        simd_f16_to_f32<neon_arch>,
        simd_f32_to_f16<neon_arch>,
        simd_attention<neon_arch>,
        false,
    };
    return table;
}

}  // namespace kiln::kernels
