// Kernel microbenchmarks: matvec bandwidth per weight type and ISA on matrices larger than L3,
// GEMM throughput, and a plain memory read of the same size so each matvec figure reads as a
// fraction of the machine's bandwidth. Run with KILN_ISA unset; each ISA is registered.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kiln/kernels/kernels.hpp"
#include "kiln/quant/quant.hpp"

namespace {

using kiln::tensor_type;
namespace kk = kiln::kernels;

constexpr size_t matrix_bytes = size_t(64) << 20;  // twice the 32 MiB L3: every pass hits DRAM
constexpr size_t cols = 4096;

size_t row_bytes_of(tensor_type type) {
    switch (type) {
        case tensor_type::f32: return 4 * cols;
        case tensor_type::f16:
        case tensor_type::bf16: return 2 * cols;
        case tensor_type::q8_0: return cols / 32 * 34;
        case tensor_type::q4_0: return cols / 32 * 18;
        case tensor_type::q4_k: return cols / 256 * 144;
    }
    return 0;
}

const char* name_of(tensor_type type) {
    switch (type) {
        case tensor_type::f32: return "f32";
        case tensor_type::f16: return "f16";
        case tensor_type::bf16: return "bf16";
        case tensor_type::q8_0: return "q8_0";
        case tensor_type::q4_0: return "q4_0";
        case tensor_type::q4_k: return "q4_k";
    }
    return "?";
}

std::vector<float> gaussian(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// A weight matrix of `rows` rows: 64 distinct quantized rows repeated (quantizing 64 MiB with
// the reference q4_k search would take minutes; the bytes streamed are what matters).
std::vector<uint8_t> make_weights(tensor_type type, size_t rows) {
    constexpr size_t distinct = 64;
    const size_t rb = row_bytes_of(type);
    const auto w = gaussian(distinct * cols, 1);
    std::vector<uint8_t> seed_rows(distinct * rb);
    for (size_t r = 0; r < distinct; ++r) kiln::quant::quantize_row(type, w.data() + r * cols, seed_rows.data() + r * rb, cols);
    std::vector<uint8_t> all(rows * rb);
    for (size_t r = 0; r < rows; ++r) std::memcpy(all.data() + r * rb, seed_rows.data() + (r % distinct) * rb, rb);
    return all;
}

struct activations {
    std::vector<float> x;
    std::vector<uint8_t> xq;
    const void* for_type(tensor_type type) const {
        return kk::uses_quantized_activations(type) ? static_cast<const void*>(xq.data()) : x.data();
    }
};

activations make_activations(const kk::kernel_table& table, size_t tokens) {
    activations a{gaussian(tokens * cols, 2), std::vector<uint8_t>(tokens * kk::quantized_row_bytes(cols))};
    table.quantize_activations(a.x.data(), cols, cols, tokens, a.xq.data());
    return a;
}

void memory_read(benchmark::State& state) {
    std::vector<uint64_t> buffer(matrix_bytes / 8, 1);
    for (auto _ : state) {
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i < buffer.size(); i += 4) s0 += buffer[i], s1 += buffer[i + 1], s2 += buffer[i + 2], s3 += buffer[i + 3];
        benchmark::DoNotOptimize(s0 + s1 + s2 + s3);
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(matrix_bytes));
}

// bytes: matrix_bytes streams from DRAM; a few hundred KiB stays in L2 and shows the kernel's
// compute limit instead.
void matvec(benchmark::State& state, const kk::kernel_table* table, tensor_type type, size_t bytes) {
    const size_t rows = bytes / row_bytes_of(type);
    const auto weights = make_weights(type, rows);
    const auto a = make_activations(*table, 1);
    std::vector<float> y(rows);
    const kk::matmul_fn fn = kk::matmul_for(*table, type);
    for (auto _ : state) {
        fn(weights.data(), 0, rows, cols, a.for_type(type), 1, y.data(), rows);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(rows * row_bytes_of(type)));
    state.counters["rows/s"] = benchmark::Counter(double(rows) * double(state.iterations()), benchmark::Counter::kIsRate);
}

void gemm(benchmark::State& state, const kk::kernel_table* table, tensor_type type) {
    const size_t rows = 4096, tokens = size_t(state.range(0));
    const auto weights = make_weights(type, rows);
    const auto a = make_activations(*table, tokens);
    std::vector<float> y(rows * tokens);
    const kk::matmul_fn fn = kk::matmul_for(*table, type);
    for (auto _ : state) {
        fn(weights.data(), 0, rows, cols, a.for_type(type), tokens, y.data(), rows);
        benchmark::DoNotOptimize(y.data());
    }
    // GOP/s: one multiply and one add per weight per token
    state.counters["GOP/s"] = benchmark::Counter(2.0 * double(rows * cols * tokens) * double(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}

void quantize(benchmark::State& state, const kk::kernel_table* table) {
    const auto x = gaussian(cols * 64, 3);
    std::vector<uint8_t> xq(64 * kk::quantized_row_bytes(cols));
    for (auto _ : state) {
        table->quantize_activations(x.data(), cols, cols, 64, xq.data());
        benchmark::DoNotOptimize(xq.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(x.size() * sizeof(float)));
}

const tensor_type all_types[] = {tensor_type::f32, tensor_type::f16, tensor_type::bf16,
                                 tensor_type::q8_0, tensor_type::q4_0, tensor_type::q4_k};

int register_all() {
    benchmark::RegisterBenchmark("memory_read/64MiB", memory_read)->Unit(benchmark::kMillisecond)->UseRealTime();
    for (const kk::kernel_table* table : kk::available()) {
        const std::string isa = table->isa;
        for (tensor_type type : all_types) {
            const std::string tn = name_of(type);
            benchmark::RegisterBenchmark(("matvec/" + isa + "/" + tn).c_str(), matvec, table, type, matrix_bytes)
                ->Unit(benchmark::kMillisecond)->UseRealTime();
            benchmark::RegisterBenchmark(("matvec_l2/" + isa + "/" + tn).c_str(), matvec, table, type,
                                         size_t(384) << 10)
                ->Unit(benchmark::kMicrosecond)->UseRealTime();
            if (isa != "scalar")
                benchmark::RegisterBenchmark(("gemm/" + isa + "/" + tn).c_str(), gemm, table, type)
                    ->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
        }
        benchmark::RegisterBenchmark(("quantize_activations/" + isa).c_str(), quantize, table)->UseRealTime();
    }
    return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
