// The avx512 instruction set (F/CD/DQ/BW/VL): see x86/avx512_table.hpp.
#include "x86/avx512_table.hpp"

namespace kiln::kernels {

const kernel_table& avx512_table() {
    static const kernel_table table = make_x86_table<avx512_arch>("avx512");
    return table;
}

}  // namespace kiln::kernels
