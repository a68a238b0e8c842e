// `kiln convert`: a model in a foreign format -> one .kiln file.
#include <cstdio>

#include "commands.hpp"
#include "kiln/formats/chat_template.hpp"
#include "kiln/formats/convert.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/import.hpp"
#include "progress.hpp"

namespace kiln::cli {
namespace {

struct convert_args {
    std::string input, output, tokenizer, type = "f32", embedding_type, chat_template;
};

// --chat-template overrides what the importer recognised; either way the user hears which one
// `kiln chat` will use, since an unrecognised template silently falls back to plain text.
void choose_chat_template(const convert_args& args, model_source& source) {
    if (!args.chat_template.empty()) source.meta.set("tokenizer.chat_template", args.chat_template);
    if (source.meta.has("tokenizer.chat_template"))
        std::fprintf(stderr, "kiln: chat template: %s\n", source.meta.get_string("tokenizer.chat_template").c_str());
    else
        std::fprintf(stderr, "kiln: no built-in chat template recognised (kiln chat will use 'plain'; set one with --chat-template)\n");
}

void run_convert(const convert_args& args) {
    import_options import;
    if (!args.tokenizer.empty()) import.tokenizer = args.tokenizer;
    auto type = tensor_type_from_name(args.type);
    if (!type) throw error("unknown weight type '" + args.type + "'");
    convert_options options;
    options.type = *type;
    if (!args.embedding_type.empty()) {
        auto e = tensor_type_from_name(args.embedding_type);
        if (!e) throw error("unknown weight type '" + args.embedding_type + "'");
        options.embedding_type = *e;
    }
    // Checked before the import, which can take a while.
    if (!args.chat_template.empty() && !chat_template::from_name(args.chat_template))
        throw error("unknown chat template '" + args.chat_template + "' (known: " + chat_template::name_list() + ")");
    model_source source = open_model_source(args.input, import);
    choose_chat_template(args, source);
    progress_bar bar("converting");
    options.progress = [&](size_t done, size_t total, const std::string& name) { bar.update(done, total, name); };
    write_kiln(source, options, args.output);
    std::fprintf(stderr, "kiln: wrote %s (%zu tensors)\n", args.output.c_str(), source.tensors.size());
}

}  // namespace

void setup_convert(CLI::App& app) {
    auto args = std::make_shared<convert_args>();
    auto* cmd = app.add_subcommand("convert", "Convert a llama2.c checkpoint, GGUF file or Hugging Face folder into a .kiln file");
    cmd->add_option("input", args->input, "Model to convert: llama2.c .bin, .gguf, or a Hugging Face folder (config.json + safetensors)")->required();
    cmd->add_option("-o,--output", args->output, "The .kiln file to write")->required();
    cmd->add_option("--tokenizer", args->tokenizer, "Tokenizer file (llama2.c tokenizer.bin) for llama2.c checkpoints");
    cmd->add_option("--type", args->type, "Weight type of the matrices: f32, f16, bf16, q8_0, q4_0, q4_k")
        ->capture_default_str();
    cmd->add_option("--embedding-type", args->embedding_type,
                    "Weight type of token_embd and output (default: f16 for --type q8_0, q8_0 for q4_0 and q4_k, else the same as --type)");
    cmd->add_option("--chat-template", args->chat_template,
                    "Chat template to store, overriding the one recognised from the source: " +
                        chat_template::name_list());
    cmd->callback([args] { run_convert(*args); });
}

}  // namespace kiln::cli
