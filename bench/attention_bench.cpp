// Attention kernel microbenchmarks per ISA and KV cache type: one KV head's query group
// (group 8, head_dim 64: a TinyLlama layer is 4 such calls, one per KV head) over a cache of
// 512, 2048 and 8192 positions. decode is one token at the end of the context; prefill is a
// 64-token block at its end, the causal mask inside the block. One head's run is 0.1-4 MiB,
// so this measures the kernel out of L2/L3, not DRAM.
//
// Counters: KV_B/s counts the K and V bytes of the context once per call (a kernel may read them
// more often); tokens/s the query tokens of this one head; GFLOP/s two per multiply-add of
// q.k and p.v over the keys each row sees.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kiln/kernels/kernels.hpp"

namespace {

namespace kk = kiln::kernels;

constexpr size_t head_dim = 64, group = 8, prefill_tokens = 64;

// Keys and values of one head, 64-byte aligned as a runtime cache's tiles are.
struct head_cache {
    size_t run_bytes;
    std::vector<unsigned char> key_storage, value_storage;
    const unsigned char* keys;
    const unsigned char* values;
};

unsigned char* aligned_64(std::vector<unsigned char>& v) {
    return v.data() + (64 - reinterpret_cast<uintptr_t>(v.data()) % 64) % 64;
}

head_cache make_cache(kk::kv_type type, size_t positions) {
    head_cache c{kk::kv_run_bytes(type, head_dim, positions), {}, {}, nullptr, nullptr};
    c.key_storage.resize(c.run_bytes + 64);
    c.value_storage.resize(c.run_bytes + 64);
    unsigned char* keys = aligned_64(c.key_storage);
    unsigned char* values = aligned_64(c.value_storage);
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> key(head_dim), value(head_dim);
    for (size_t p = 0; p < positions; ++p) {
        for (size_t d = 0; d < head_dim; ++d) key[d] = dist(rng), value[d] = dist(rng);
        kk::kv_store(type, head_dim, p, key.data(), value.data(), keys, values);
    }
    c.keys = keys;
    c.values = values;
    return c;
}

void attention(benchmark::State& state, const kk::kernel_table* table, kk::kv_type type, size_t context,
               size_t tokens) {
    const head_cache c = make_cache(type, context);
    std::mt19937 rng(2);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> q(tokens * group * head_dim);
    for (float& x : q) x = dist(rng);
    std::vector<float> out(q.size()), scratch(kk::attention_scratch_floats(head_dim));
    const kk::attention_args args{q.data(), group * head_dim, tokens, group, head_dim, type, c.keys, c.values, 0,
                                  0, context, context - tokens, 1.0f / std::sqrt(float(head_dim)), true,
                                  out.data(), group * head_dim, nullptr, nullptr, scratch.data()};
    for (auto _ : state) {
        table->attention(args);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    double visible = 0;  // keys seen, summed over the block's tokens
    for (size_t t = 0; t < tokens; ++t) visible += double(context - tokens + t + 1);
    const double iterations = double(state.iterations());
    state.counters["KV_B/s"] = benchmark::Counter(2.0 * double(c.run_bytes) * iterations,
                                                  benchmark::Counter::kIsRate, benchmark::Counter::kIs1024);
    state.counters["tokens/s"] = benchmark::Counter(double(tokens) * iterations, benchmark::Counter::kIsRate);
    state.counters["GFLOP/s"] = benchmark::Counter(4.0 * double(group * head_dim) * visible * iterations / 1e9,
                                                   benchmark::Counter::kIsRate);
}

// Decode over a whole model's cache in DRAM: TinyLlama-1.1B's 22 layers x 4 KV heads at 4096
// positions (88 MiB in f16), one token through every head in turn, as a decode step reads it.
// The per-head benchmarks above run from L2/L3; this one shows what DRAM adds.
void attention_decode_model(benchmark::State& state, const kk::kernel_table* table, kk::kv_type type) {
    constexpr size_t heads = 22 * 4, context = 4096;
    std::vector<head_cache> caches;
    for (size_t h = 0; h < heads; ++h) caches.push_back(make_cache(type, context));
    std::mt19937 rng(2);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> q(group * head_dim);
    for (float& x : q) x = dist(rng);
    std::vector<float> out(q.size()), scratch(kk::attention_scratch_floats(head_dim));
    for (auto _ : state) {
        for (const head_cache& c : caches) {
            const kk::attention_args args{q.data(), group * head_dim, 1, group, head_dim, type, c.keys, c.values, 0,
                                          0, context, context - 1, 1.0f / std::sqrt(float(head_dim)), true,
                                          out.data(), group * head_dim, nullptr, nullptr, scratch.data()};
            table->attention(args);
        }
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    const double iterations = double(state.iterations());
    state.counters["KV_B/s"] = benchmark::Counter(2.0 * double(caches[0].run_bytes * heads) * iterations,
                                                  benchmark::Counter::kIsRate, benchmark::Counter::kIs1024);
    state.counters["GFLOP/s"] = benchmark::Counter(4.0 * double(group * head_dim * context * heads) * iterations / 1e9,
                                                   benchmark::Counter::kIsRate);
}

int register_all() {
    for (const kk::kernel_table* table : kk::available()) {
        const std::string isa = table->isa;
        for (kk::kv_type type : {kk::kv_type::f32, kk::kv_type::f16, kk::kv_type::bf16, kk::kv_type::q8_0}) {
            const std::string tn(kk::kv_type_name(type));
            for (size_t context : {512u, 2048u, 8192u}) {
                const std::string suffix = isa + "/" + tn + "/" + std::to_string(context);
                benchmark::RegisterBenchmark(("attention_decode/" + suffix).c_str(), attention, table, type,
                                             context, size_t(1))
                    ->Unit(benchmark::kMicrosecond)->UseRealTime();
                // Scalar prefill at 8192 takes about a second a call: the ratio is clear by 2048.
                if (isa != "scalar" || context <= 2048)
                    benchmark::RegisterBenchmark(("attention_prefill/" + suffix).c_str(), attention, table, type,
                                                 context, prefill_tokens)
                        ->Unit(benchmark::kMillisecond)->UseRealTime();
            }
        }
    }
    for (const kk::kernel_table* table : kk::available())
        if (std::string_view(table->isa) != "scalar")
            for (kk::kv_type type : {kk::kv_type::f16, kk::kv_type::bf16, kk::kv_type::q8_0})
                benchmark::RegisterBenchmark(
                    ("attention_decode_model/" + std::string(table->isa) + "/" + std::string(kk::kv_type_name(type)) +
                     "/4096")
                        .c_str(),
                    attention_decode_model, table, type)
                    ->Unit(benchmark::kMillisecond)
                    ->UseRealTime();
    return 0;
}

const int registered = register_all();

}  // namespace
