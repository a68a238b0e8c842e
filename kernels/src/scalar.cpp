// The scalar instruction set: the reference table every other ISA is tested against.
#include "scalar/scalar_ops.hpp"
#include "tables.hpp"

namespace kiln::kernels {

const kernel_table& scalar_table() {
    static const kernel_table table{
        "scalar",          scalar::quantize_activations,
        scalar::matmul_f32, scalar::matmul_f16, scalar::matmul_bf16,
        scalar::matmul_q8_0, scalar::matmul_q4_0, scalar::matmul_q4_k,
        scalar::dot,       scalar::rmsnorm, scalar::rope, scalar::swiglu, scalar::softmax,
        scalar::add,       scalar::scale, scalar::f16_to_f32, scalar::f32_to_f16,
        scalar::attention,
        false,
    };
    return table;
}

}  // namespace kiln::kernels
