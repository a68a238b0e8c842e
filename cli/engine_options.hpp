// The options every command that runs a model shares (-t, -c, -b, --kv-type, --reference, --device) and
// the one place that turns them into a language model.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "kiln/runtime/language_model.hpp"
#include "kiln/runtime/model.hpp"
#include "kiln/runtime/sampler.hpp"
#include "kiln/runtime/thread_pool.hpp"

namespace kiln::cli {

struct engine_args {
    int threads = 0;
    int32_t context = 0;  // 0 = the model's
    int32_t batch = 512;
    std::string kv_type = "f16";
    bool reference = false;
    std::string device = "cpu";  // cpu or cuda (--device)
};

// with_context = false for commands that choose the context themselves (bench, perplexity),
// with_threads = false for bench, whose -t takes a list.
void add_engine_options(CLI::App* cmd, engine_args& args, bool with_context = true, bool with_threads = true);

// --temp, --top-k, --top-p, --seed (run and chat).
void add_sampling_options(CLI::App* cmd, sampler_params& sampling);

// The fast path, the f32 reference with --reference, or the CUDA backend with --device cuda
// (kiln::error when not built in or no usable GPU). context overrides args.context when > 0.
std::unique_ptr<language_model> make_engine(std::shared_ptr<const model> m, thread_pool& pool, const engine_args& args,
                                            int32_t context = 0);

// -v lines on stderr: the model's shape, the path, SIMD level, threads and the KV cache size; for
// --device cuda the backend, the GPU's name and the device memory used.
void print_engine(const std::string& model_path, const model& m, const language_model& lm, const thread_pool& pool,
                  const engine_args& args);

}  // namespace kiln::cli
