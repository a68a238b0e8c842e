// `kiln run`: generate text from a prompt, streaming tokens to stdout.
#include <cstdio>
#include <thread>

#include "commands.hpp"
#include "engine_options.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/runtime/generate.hpp"
#include "kiln/runtime/model.hpp"
#include "kiln/runtime/sampler.hpp"
#include "kiln/runtime/tokenizer.hpp"

namespace kiln::cli {
namespace {

struct run_args {
    std::string model_path;
    std::string prompt;
    int32_t n_predict = 256;
    sampler_params sampling;
    engine_args engine;
    bool verbose = false;
};

void run_generation(const run_args& args) {
    auto m = model::load(args.model_path);
    tokenizer tok(m->vocab());
    std::vector<int32_t> prompt = tok.encode(args.prompt, m->vocab().add_bos);

    generation_request request;
    request.prompt = prompt;
    request.max_new_tokens = args.n_predict;
    request.stop_tokens = {tok.eos_id()};
    // A generated BOS starts a new document (llama2.c models end a story that way): stop there too.
    if (tok.bos_id() >= 0) request.stop_tokens.push_back(tok.bos_id());

    thread_pool pool(args.engine.threads);
    std::unique_ptr<language_model> lm = make_engine(m, pool, args.engine);
    if (args.verbose) print_engine(args.model_path, *m, *lm, pool, args.engine);
    sampler sample(args.sampling, m->config().vocab_size);

    // The prompt is echoed first, as the decode of its tokens, so stdout is the whole text.
    int32_t previous = -1;
    for (int32_t id : prompt) {
        std::fputs(tok.piece_text(previous, id).c_str(), stdout);
        previous = id;
    }
    std::fflush(stdout);
    generation_stats stats = generate(*lm, request, sample, [&](int32_t id) {
        std::fputs(tok.piece_text(previous, id).c_str(), stdout);
        std::fflush(stdout);
        previous = id;
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);
    std::fprintf(stderr, "kiln: prompt %d tokens (%.1f t/s), generated %d tokens (%.1f t/s)\n", stats.prompt_tokens,
                 stats.prompt_seconds > 0 ? stats.prompt_tokens / stats.prompt_seconds : 0.0, stats.generated_tokens,
                 stats.generate_seconds > 0 ? stats.generated_tokens / stats.generate_seconds : 0.0);
}

}  // namespace

void setup_run(CLI::App& app) {
    auto args = std::make_shared<run_args>();
    auto* cmd = app.add_subcommand("run", "Generate text from a prompt");
    cmd->add_option("-m,--model", args->model_path, "Model file (.kiln)")->required();
    cmd->add_option("-p,--prompt", args->prompt, "Prompt text (empty: start from BOS)");
    cmd->add_option("-n,--n-predict", args->n_predict, "Number of tokens to generate")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    add_sampling_options(cmd, args->sampling);
    add_engine_options(cmd, args->engine);
    cmd->add_flag("-v,--verbose", args->verbose, "Print the model's shape, the path, threads and the KV cache size");
    cmd->callback([args] { run_generation(*args); });
}

}  // namespace kiln::cli
