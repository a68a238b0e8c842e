// `kiln quantize`: a .kiln file -> another .kiln file with its matrices in another weight type.
#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "kiln/formats/convert.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/import.hpp"
#include "progress.hpp"

namespace kiln::cli {
namespace {

struct quantize_args {
    std::string input, output, type, embedding_type;
};

tensor_type parse_type(const std::string& name) {
    auto type = tensor_type_from_name(name);
    if (!type) throw error("unknown weight type '" + name + "'");
    return *type;
}

void run_quantize(const quantize_args& args) {
    std::error_code ec;
    if (std::filesystem::equivalent(args.input, args.output, ec))
        throw error("the output would overwrite the input " + args.input);
    convert_options options;
    options.type = parse_type(args.type);
    if (!args.embedding_type.empty()) options.embedding_type = parse_type(args.embedding_type);
    model_source source = load_kiln_source(args.input);
    progress_bar bar("quantizing");
    options.progress = [&](size_t done, size_t total, const std::string& name) { bar.update(done, total, name); };
    write_kiln(source, options, args.output);
    std::fprintf(stderr, "kiln: wrote %s\n", args.output.c_str());
}

}  // namespace

void setup_quantize(CLI::App& app) {
    auto args = std::make_shared<quantize_args>();
    auto* cmd = app.add_subcommand("quantize", "Rewrite a .kiln file with its matrices in another weight type");
    cmd->add_option("input", args->input, "The .kiln file to read")->required();
    cmd->add_option("output", args->output, "The .kiln file to write")->required();
    cmd->add_option("--type", args->type, "Weight type of the matrices: f32, f16, bf16, q8_0, q4_0, q4_k")->required();
    cmd->add_option("--embedding-type", args->embedding_type,
                    "Weight type of token_embd and output (default: f16 for --type q8_0, q8_0 for q4_0 and q4_k, else the same as --type)");
    cmd->callback([args] { run_quantize(*args); });
}

}  // namespace kiln::cli
