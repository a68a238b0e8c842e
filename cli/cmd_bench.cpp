// `kiln bench`: llama-bench-style prompt-processing and generation speed of a model, as a
// markdown table (mean ± stddev over repetitions, plus the weight bandwidth of generation).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>

#include "commands.hpp"
#include "engine_options.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/kernels/kernels.hpp"
#include "kiln/runtime/fast_llama.hpp"
#include "kiln/runtime/model.hpp"

namespace kiln::cli {
namespace {

struct bench_args {
    std::string model_path;
    std::vector<int> prompt_sizes{128};
    std::vector<int> gen_sizes{32};
    std::vector<int> threads{0};
    int repetitions = 5;
    int depth = 0;
    engine_args engine;  // its threads field is unused: -t takes a list here
};

// What the table says about the model, computed once from its tensor table.
struct model_summary {
    std::string name;
    double size_bytes = 0;  // all tensors
    double params = 0;
    std::string main_type;        // the type holding most matrix bytes
    uint64_t streamed_bytes = 0;  // matrix bytes read per generated token
};

model_summary summarize(const std::string& path, const model& m) {
    model_summary s;
    s.name = std::filesystem::path(path).filename().string();
    std::map<std::string, uint64_t> matrix_bytes_by_type;
    uint64_t bytes = 0, params = 0;
    for (const auto& t : m.file().tensors()) {
        bytes += t.size;
        params += t.n_elements();
        if (t.shape.size() < 2) continue;
        // The model's type is its layers' (llama-bench's ftype): token_embd and output keep
        // their own, often wider, type (convert's --embedding-type).
        if (t.name != "token_embd" && t.name != "output") matrix_bytes_by_type[std::string(type_name(t.type))] += t.size;
        // The embedding table is read one row per token, not streamed whole; of a mixture of
        // experts a token reads only its top-k experts' matrices.
        if (m.is_deepseek2() && t.name.ends_with("_exps"))
            s.streamed_bytes += t.size / m.deepseek2().n_experts * m.deepseek2().n_experts_used;
        else if (t.name != "token_embd")
            s.streamed_bytes += t.size;
    }
    // A shared classifier streams the embedding table after all.
    if (m.weights().output == m.weights().token_embd) s.streamed_bytes += m.weights().output->size;
    s.size_bytes = double(bytes);
    s.params = double(params);
    uint64_t most = 0;
    for (const auto& [type, n] : matrix_bytes_by_type)
        if (n > most) most = n, s.main_type = type;
    return s;
}

struct timing {
    double mean = 0, stddev = 0;  // tokens per second
};

timing summarize_rates(const std::vector<double>& rates) {
    timing t;
    for (double r : rates) t.mean += r;
    t.mean /= double(rates.size());
    if (rates.size() > 1) {
        double sq = 0;
        for (double r : rates) sq += (r - t.mean) * (r - t.mean);
        t.stddev = std::sqrt(sq / double(rates.size() - 1));
    }
    return t;
}

int32_t argmax(std::span<const float> logits) {
    return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// Runs one test (warm-up, then `reps` timed runs) starting at position `depth`: the cache below
// depth was filled once and is never overwritten, so every run sees the same history.
timing time_test(language_model& lm, const std::vector<int32_t>& tokens, int depth, int n, bool generation, int reps) {
    std::vector<double> rates;
    for (int rep = -1; rep < reps; ++rep) {
        double seconds = 0;
        if (generation) {
            // The first token is the "prompt" and untimed; each timed step feeds the greedy pick.
            int32_t next = argmax(lm.forward(tokens[0], depth));
            const auto start = std::chrono::steady_clock::now();
            for (int i = 0; i < n; ++i) next = argmax(lm.forward(next, depth + 1 + i));
            seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        } else {
            const auto start = std::chrono::steady_clock::now();
            lm.forward_batch(std::span<const int32_t>(tokens.data(), size_t(n)), depth, false);
            seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
        if (rep >= 0) rates.push_back(double(n) / seconds);
    }
    return summarize_rates(rates);
}

// Bytes as GiB, or MiB below one GiB so that small models do not read 0.00.
std::string bytes_text(double bytes) {
    char buf[32];
    if (bytes >= double(1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(1ull << 30));
    else std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / double(1ull << 20));
    return buf;
}

std::string params_text(double params) {
    char buf[32];
    if (params >= 1e9) std::snprintf(buf, sizeof buf, "%.2f B", params / 1e9);
    else std::snprintf(buf, sizeof buf, "%.2f M", params / 1e6);
    return buf;
}

void print_row(const model_summary& s, int threads, const std::string& test, const timing& t, bool generation) {
    std::string weights, bandwidth;
    if (generation) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f", double(s.streamed_bytes) * t.mean / 1e9);
        weights = bytes_text(double(s.streamed_bytes));
        bandwidth = buf;
    }
    std::printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %s | %s |\n", s.name.c_str(),
                bytes_text(s.size_bytes).c_str(), params_text(s.params).c_str(), s.main_type.c_str(), threads,
                test.c_str(), t.mean, t.stddev, weights.c_str(), bandwidth.c_str());
    std::fflush(stdout);
}

void run_bench(const bench_args& args) {
    auto m = model::load(args.model_path);
    const model_summary summary = summarize(args.model_path, *m);
    int longest = 1;
    for (int p : args.prompt_sizes) longest = std::max(longest, p);
    for (int n : args.gen_sizes) longest = std::max(longest, n + 1);
    const int32_t context = args.depth + longest;
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> pick(0, int32_t(m->config().vocab_size) - 1);
    std::vector<int32_t> tokens(size_t(std::max(args.depth, longest)));
    for (int32_t& t : tokens) t = pick(rng);

    std::printf("kiln bench: simd %s, %d physical cores, %s path, KV cache %s, batch %d, %d repetitions after 1 warm-up%s\n\n",
                std::string(kernels::active_isa()).c_str(), physical_core_count(),
                args.engine.device == "cuda" ? "cuda" : args.engine.reference ? "reference" : "fast",
                args.engine.reference ? "f32" : args.engine.kv_type.c_str(),
                args.engine.batch, args.repetitions, args.depth ? (", depth " + std::to_string(args.depth)).c_str() : "");
    std::printf("| model | size | params | type | threads | test | t/s | weights/token | GB/s |\n");
    std::printf("| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: |\n");
    std::fflush(stdout);
    const std::string at_depth = args.depth ? " @ d" + std::to_string(args.depth) : "";
    // The reference path is single-threaded and the GPU takes no CPU threads: one row set,
    // whatever -t says.
    const bool one_row_set = args.engine.reference || args.engine.device == "cuda";
    const std::vector<int> thread_counts = one_row_set ? std::vector<int>{1} : args.threads;
    for (int threads : thread_counts) {
        thread_pool pool(threads);
        std::unique_ptr<language_model> lm = make_engine(m, pool, args.engine, context);
        if (args.depth > 0) lm->forward_batch(std::span<const int32_t>(tokens.data(), size_t(args.depth)), 0, false);
        const int shown_threads = one_row_set ? 1 : pool.size();
        for (int p : args.prompt_sizes)
            if (p > 0)
                print_row(summary, shown_threads, "pp" + std::to_string(p) + at_depth,
                          time_test(*lm, tokens, args.depth, p, false, args.repetitions), false);
        for (int n : args.gen_sizes)
            if (n > 0)
                print_row(summary, shown_threads, "tg" + std::to_string(n) + at_depth,
                          time_test(*lm, tokens, args.depth, n, true, args.repetitions), true);
    }
}

}  // namespace

void setup_bench(CLI::App& app) {
    auto args = std::make_shared<bench_args>();
    auto* cmd = app.add_subcommand("bench", "Measure prompt processing (pp) and generation (tg) speed");
    cmd->add_option("-m,--model", args->model_path, "Model file (.kiln)")->required();
    cmd->add_option("-p,--n-prompt", args->prompt_sizes, "Prompt sizes to time, comma-separated (0 = none)")
        ->delimiter(',')
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("-n,--n-gen", args->gen_sizes, "Generation lengths to time, comma-separated (0 = none)")
        ->delimiter(',')
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("-r,--repetitions", args->repetitions, "Timed runs of each test (after one warm-up)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("-t,--threads", args->threads, "Thread counts, comma-separated (0 = physical cores)")
        ->delimiter(',')
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("-d,--depth", args->depth, "Tokens already in the KV cache before each test")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    add_engine_options(cmd, args->engine, false, false);
    cmd->callback([args] { run_bench(*args); });
}

}  // namespace kiln::cli
