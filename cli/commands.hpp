// Each subcommand adds itself to the CLI11 app through one setup function in its own file.
#pragma once
#include <CLI/CLI.hpp>

namespace kiln::cli {

void setup_convert(CLI::App& app);
void setup_run(CLI::App& app);
void setup_inspect(CLI::App& app);
void setup_synth(CLI::App& app);
void setup_bench(CLI::App& app);
void setup_perplexity(CLI::App& app);
void setup_quantize(CLI::App& app);
void setup_tokenize(CLI::App& app);
void setup_chat(CLI::App& app);

}  // namespace kiln::cli
