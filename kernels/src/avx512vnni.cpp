// The avx512vnni instruction set: the avx512 table compiled with -mavx512vnni, so the int8 dot
// products of the block kernels are vpdpbusd (one instruction for maddubs + madd + add).
#include "x86/avx512_table.hpp"

#if !defined(__AVX512VNNI__)
#error "avx512vnni.cpp must be compiled with -mavx512vnni"
#endif

namespace kiln::kernels {

const kernel_table& avx512vnni_table() {
    static const kernel_table table = make_x86_table<avx512_arch>("avx512vnni");
    return table;
}

}  // namespace kiln::kernels
