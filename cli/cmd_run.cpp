// `kiln run`: generate text from a prompt, streaming tokens to stdout.
#include <cstdio>
#include <thread>

#include "commands.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/kernels/kernels.hpp"
#include "kiln/runtime/fast_llama.hpp"
#include "kiln/runtime/generate.hpp"
#include "kiln/runtime/model.hpp"
#include "kiln/runtime/reference_llama.hpp"
#include "kiln/runtime/sampler.hpp"
#include "kiln/runtime/tokenizer.hpp"

namespace kiln::cli {
namespace {

struct run_args {
    std::string model_path;
    std::string prompt;
    int32_t n_predict = 256;
    sampler_params sampling;
    int threads = 0;
    int32_t context = 0;
    bool reference = false;
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

    thread_pool pool(args.threads);
    std::unique_ptr<language_model> lm;
    if (args.reference) lm = std::make_unique<reference_llama>(m, args.context);
    else lm = std::make_unique<fast_llama>(m, pool, fast_llama_options{.context_length = args.context});
    if (args.verbose) {
        const llama_config& c = m->config();
        std::fprintf(stderr,
                     "kiln: %s: llama, %llu layers, dim %llu, %llu heads (%llu kv), vocab %llu, context %d\n"
                     "kiln: %s path, simd %s, %d threads\n",
                     args.model_path.c_str(), (unsigned long long)c.n_layers, (unsigned long long)c.dim,
                     (unsigned long long)c.n_heads, (unsigned long long)c.n_kv_heads,
                     (unsigned long long)c.vocab_size, lm->context_length(), args.reference ? "reference" : "fast",
                     std::string(kernels::active_isa()).c_str(), args.reference ? 1 : pool.size());
    }
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
    cmd->add_option("--temp", args->sampling.temperature, "Temperature (0 = greedy)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--top-k", args->sampling.top_k, "Keep the k most likely tokens (0 = off)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--top-p", args->sampling.top_p, "Nucleus sampling threshold (1 = off)")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--seed", args->sampling.seed, "Random seed")->capture_default_str();
    cmd->add_option("-t,--threads", args->threads, "Threads (0 = physical cores)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("-c,--ctx-size", args->context, "Context size in tokens (0 = the model's)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_flag("--reference", args->reference, "Use the plain f32 reference forward pass (slow; the oracle)");
    cmd->add_flag("-v,--verbose", args->verbose, "Print model details");
    cmd->callback([args] { run_generation(*args); });
}

}  // namespace kiln::cli
