// Chooses the kernel table once (CPU features or KILN_ISA) and forwards the convenience calls.
#include <array>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cpu_features.hpp"
#include "tables.hpp"

namespace kiln::kernels {
namespace {

struct table_list {
    std::array<const kernel_table*, 6> tables{};
    size_t count = 0;
};

// Best last, so the default is the final entry.
table_list runnable_tables() {
    table_list list;
    list.tables[list.count++] = &scalar_table();
    const cpu_features& cpu = detect_cpu();
#if defined(__x86_64__) || defined(_M_X64)
    if (cpu.avx2) list.tables[list.count++] = &avx2_table();
    if (cpu.avx512) list.tables[list.count++] = &avx512_table();
    if (cpu.avx512 && cpu.avx512vnni) list.tables[list.count++] = &avx512vnni_table();
    if (cpu.avx512vnni && cpu.avx512bf16) list.tables[list.count++] = &avx512bf16_table();
#endif
#if defined(__aarch64__)
    if (cpu.neon) list.tables[list.count++] = &neon_table();
#endif
    return list;
}

const table_list& runnable() {
    static const table_list list = runnable_tables();
    return list;
}

const kernel_table& choose() {
    const char* forced = std::getenv("KILN_ISA");
    if (forced == nullptr || *forced == '\0') return *runnable().tables[runnable().count - 1];
    const std::string_view name(forced);
    if (name != "scalar" && name != "avx2" && name != "avx512" && name != "avx512vnni" &&
        name != "avx512bf16" && name != "neon")
        throw std::runtime_error("KILN_ISA=" + std::string(name) + ": unknown ISA (scalar, avx2, avx512, avx512vnni, avx512bf16, neon)");
    if (const kernel_table* table = find(name)) return *table;
    throw std::runtime_error("KILN_ISA=" + std::string(name) +
                             ": not supported by this CPU (or its OS) or not built in; available: " +
                             [] {
                                 std::string names;
                                 for (const kernel_table* t : available()) names += std::string(names.empty() ? "" : ", ") + t->isa;
                                 return names;
                             }());
}

}  // namespace

const kernel_table& active() {
    static const kernel_table& table = choose();
    return table;
}

std::string_view active_isa() { return active().isa; }

std::span<const kernel_table* const> available() {
    return {runnable().tables.data(), runnable().count};
}

const kernel_table* find(std::string_view isa) {
    for (const kernel_table* table : available())
        if (isa == table->isa) return table;
    return nullptr;
}

matmul_fn matmul_for(const kernel_table& table, tensor_type type) {
    switch (type) {
        case tensor_type::f32: return table.matmul_f32;
        case tensor_type::f16: return table.matmul_f16;
        case tensor_type::bf16: return table.matmul_bf16;
        case tensor_type::q8_0: return table.matmul_q8_0;
        case tensor_type::q4_0: return table.matmul_q4_0;
        case tensor_type::q4_k: return table.matmul_q4_k;
    }
    throw std::invalid_argument("matmul_for: unknown tensor type " + std::to_string(unsigned(type)));
}

void rope_angles(size_t pos, size_t head_dim, double theta, float* cos, float* sin) {
    for (size_t i = 0; i < head_dim / 2; ++i) {
        const double angle = double(pos) * std::pow(theta, -2.0 * double(i) / double(head_dim));
        cos[i] = float(std::cos(angle));
        sin[i] = float(std::sin(angle));
    }
}

void quantize_activations(const float* x, size_t ldx, size_t cols, size_t n_tokens, void* dst) {
    active().quantize_activations(x, ldx, cols, n_tokens, dst);
}

void matvec_rows(tensor_type type, const void* weights, size_t row_begin, size_t row_end, size_t cols,
                 const void* x, float* y) {
    matmul_for(active(), type)(weights, row_begin, row_end, cols, x, 1, y, 0);
}

void gemm_rows(tensor_type type, const void* weights, size_t row_begin, size_t row_end, size_t cols,
               const void* x, size_t n_tokens, float* y, size_t ldy) {
    matmul_for(active(), type)(weights, row_begin, row_end, cols, x, n_tokens, y, ldy);
}

}  // namespace kiln::kernels
