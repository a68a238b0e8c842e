// The kiln executable: parses the command line and turns every error into one line on stderr.
#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "kiln/kernels/kernels.hpp"

int main(int argc, char** argv) {
    CLI::App app{"kiln: run large language models fast on the CPU"};
    app.require_subcommand(1);
    app.set_version_flag("--version", [] {
        return std::string("kiln ") + KILN_VERSION + "\nsimd: " + std::string(kiln::kernels::active_isa());
    });
    kiln::cli::setup_convert(app);
    kiln::cli::setup_run(app);
    kiln::cli::setup_inspect(app);
    kiln::cli::setup_synth(app);
    kiln::cli::setup_bench(app);
    kiln::cli::setup_perplexity(app);
    kiln::cli::setup_quantize(app);
    kiln::cli::setup_tokenize(app);
    kiln::cli::setup_chat(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "kiln: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
