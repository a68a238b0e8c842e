// Internal: the per-ISA tables each instruction-set translation unit defines.
#pragma once
#include "kiln/kernels/kernels.hpp"

namespace kiln::kernels {

const kernel_table& scalar_table();
#if defined(__x86_64__) || defined(_M_X64)
const kernel_table& avx2_table();
const kernel_table& avx512_table();
const kernel_table& avx512vnni_table();
const kernel_table& avx512bf16_table();
#endif
#if defined(__aarch64__)
const kernel_table& neon_table();
#endif

}  // namespace kiln::kernels
