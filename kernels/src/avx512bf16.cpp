// The avx512bf16 instruction set (Zen 4, Sapphire Rapids and later): the avx512vnni table with
// attention over f16 caches taking bf16 products (x86/attention_bf16.hpp), twice the multiply
// rate of f32 FMAs, which is what long-context decode waits on.
#include "x86/avx512_table.hpp"
#include "x86/attention_bf16.hpp"

#if !defined(__AVX512VNNI__) || !defined(__AVX512BF16__)
#error "avx512bf16.cpp must be compiled with -mavx512vnni -mavx512bf16"
#endif

namespace kiln::kernels {

const kernel_table& avx512bf16_table() {
    static const kernel_table table = [] {
        kernel_table t = make_x86_table<avx512_arch>("avx512bf16");
        t.attention = bf16_attention;
        t.attention_bf16_products = true;
        return t;
    }();
    return table;
}

}  // namespace kiln::kernels
