// `kiln synth`: a random-weight model of a real shape, for benchmarks without downloads.
#include <cstdio>
#include <cstdlib>

#include "commands.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/synthetic.hpp"
#include "progress.hpp"

namespace kiln::cli {
namespace {

struct synth_args {
    std::string preset, type = "f32", output, tokenizer;
    uint64_t seed = 1;
};

// llama2.c's tokenizer.bin (the Llama 2 vocabulary) gives 32000-token presets real text; it is
// looked for where the tests find models: $KILN_MODELS, else ../shared/models.
std::optional<std::filesystem::path> default_tokenizer(uint64_t vocab_size) {
    if (vocab_size != 32000) return std::nullopt;
    const char* env = std::getenv("KILN_MODELS");
    const std::filesystem::path models = env && *env ? env : "../shared/models";
    const auto path = models / "llama2c" / "tokenizer.bin";
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) return path;
    return std::nullopt;
}

void run_synth(const synth_args& args) {
    const synthetic_preset& preset = find_synthetic_preset(args.preset);
    auto type = tensor_type_from_name(args.type);
    if (!type) throw error("unknown weight type '" + args.type + "'");
    synthetic_options options;
    options.type = *type;
    options.seed = args.seed;
    if (!args.tokenizer.empty()) options.tokenizer = args.tokenizer;
    else options.tokenizer = default_tokenizer(preset.config.vocab_size);
    progress_bar bar("synthesizing");
    options.progress = [&](size_t done, size_t total, const std::string& name) { bar.update(done, total, name); };
    write_synthetic(preset, options, args.output);
    std::fprintf(stderr, "kiln: wrote %s (%s, %s, seed %llu, tokenizer %s)\n", args.output.c_str(),
                 preset.name.c_str(), args.type.c_str(), static_cast<unsigned long long>(args.seed),
                 options.tokenizer ? options.tokenizer->string().c_str() : "synthetic");
}

std::string preset_help() {
    std::string help = "Model shape:";
    for (const auto& p : synthetic_presets()) help += "\n  " + p.name + ": " + p.description;
    return help;
}

}  // namespace

void setup_synth(CLI::App& app) {
    auto args = std::make_shared<synth_args>();
    auto* cmd = app.add_subcommand("synth", "Write a random-weight model of a real shape (for benchmarks)");
    cmd->add_option("--preset", args->preset, preset_help())->required();
    cmd->add_option("--type", args->type, "Weight type of the matrices: f32, f16, bf16, q8_0, q4_0, q4_k")
        ->capture_default_str();
    cmd->add_option("-o,--output", args->output, "The .kiln file to write")->required();
    cmd->add_option("--seed", args->seed, "Random seed (same seed, same file)")->capture_default_str();
    cmd->add_option("--tokenizer", args->tokenizer,
                    "llama2.c tokenizer.bin to store (default for 32000-token presets: "
                    "$KILN_MODELS/llama2c/tokenizer.bin when present; else a made-up vocabulary)");
    cmd->callback([args] { run_synth(*args); });
}

}  // namespace kiln::cli
