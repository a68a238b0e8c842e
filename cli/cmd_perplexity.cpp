// `kiln perplexity`: perplexity of a text file, and KL-divergence against saved base logits.
#include <cstdio>
#include <fstream>

#include "commands.hpp"
#include "engine_options.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/runtime/perplexity.hpp"
#include "kiln/runtime/tokenizer.hpp"
#include "progress.hpp"

namespace kiln::cli {
namespace {

struct perplexity_args {
    std::string model_path, text_path, save_logits, kl_divergence;
    int32_t n_ctx = 256;
    size_t chunks = 0;
    engine_args engine;
};

void run_perplexity(const perplexity_args& args) {
    std::ifstream in(args.text_path, std::ios::binary);
    if (!in) throw file_error(args.text_path, "cannot open");
    const std::string text(std::istreambuf_iterator<char>(in), {});
    auto m = model::load(args.model_path);
    tokenizer tok(m->vocab());
    const std::vector<int32_t> tokens = tok.encode(text, true);

    thread_pool pool(args.engine.threads);
    std::unique_ptr<language_model> lm = make_engine(m, pool, args.engine, args.n_ctx);

    saved_logprobs saved, base;
    perplexity_options options;
    options.n_ctx = args.n_ctx;
    options.max_chunks = args.chunks;
    options.bos_id = m->vocab().add_bos ? int32_t(m->vocab().bos_id) : -1;
    if (!args.save_logits.empty()) options.save = &saved;
    if (!args.kl_divergence.empty()) {
        base = saved_logprobs::load(args.kl_divergence);
        options.base = &base;
    }
    progress_bar bar("perplexity");
    options.progress = [&](size_t done, size_t total) { bar.update(done, total); };
    std::fprintf(stderr, "kiln: %zu tokens, windows of %d, scoring the second half of each\n", tokens.size(), args.n_ctx);
    perplexity_result r = compute_perplexity(*lm, tokens, options);
    std::printf("chunks: %zu, scored tokens: %zu\nPPL = %.4f +/- %.4f\n", r.chunks, r.scored_tokens, r.ppl, r.ppl_error);
    if (r.kld)
        std::printf("KLD: mean %.6f, 99th percentile %.6f, top-1 agreement %.2f%% (%zu positions)\n", r.kld->mean,
                    r.kld->p99, 100.0 * r.kld->top1_agreement, r.kld->positions);
    if (options.save) saved.save(args.save_logits);
}

}  // namespace

void setup_perplexity(CLI::App& app) {
    auto args = std::make_shared<perplexity_args>();
    auto* cmd = app.add_subcommand("perplexity", "Perplexity of a text file (llama-perplexity scoring)");
    cmd->add_option("-m,--model", args->model_path, "Model file (.kiln)")->required();
    cmd->add_option("-f,--file", args->text_path, "Text file")->required();
    cmd->add_option("-c,--ctx-size", args->n_ctx, "Window length in tokens")->capture_default_str()->check(CLI::Range(4, 1 << 20));
    cmd->add_option("--chunks", args->chunks, "Score at most this many windows (0 = all)")->capture_default_str();
    cmd->add_option("--save-logits", args->save_logits, "Save this model's log-probabilities (the base for --kl-divergence)");
    cmd->add_option("--kl-divergence", args->kl_divergence, "Compare against log-probabilities saved with --save-logits");
    add_engine_options(cmd, args->engine, false);
    cmd->callback([args] { run_perplexity(*args); });
}

}  // namespace kiln::cli
