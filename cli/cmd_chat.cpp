// `kiln chat`: a conversation with a chat model. On a terminal it prompts and streams replies; with
// stdin from a file or pipe each line is one user turn and each reply is printed followed by a
// newline, so a chat can be scripted and tested.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "commands.hpp"
#include "engine_options.hpp"
#include "kiln/formats/chat_template.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/runtime/chat_session.hpp"
#include "kiln/runtime/model.hpp"
#include "kiln/runtime/sampler.hpp"
#include "kiln/runtime/tokenizer.hpp"

namespace kiln::cli {
namespace {

struct chat_args {
    std::string model_path;
    std::string system;
    std::string chat_template;
    int32_t n_predict = 512;
    sampler_params sampling;
    engine_args engine;
    bool verbose = false;
};

// --chat-template, else the model's stored template, else plain: a base model (no template) can
// still be talked to, and the user is told so.
std::optional<chat_template> requested_template(const chat_args& args) {
    if (args.chat_template.empty()) return std::nullopt;
    auto chosen = chat_template::from_name(args.chat_template);
    if (!chosen) throw error("unknown chat template '" + args.chat_template + "' (known: " + chat_template::name_list() + ")");
    return chosen;
}

chat_template choose_template(const chat_args& args, const model& m) {
    if (auto requested = requested_template(args)) return *requested;
    const std::string& stored = m.vocab().chat_template;
    if (stored.empty()) {
        std::fprintf(stderr, "kiln: the model names no chat template; using 'plain' (pick one with --chat-template)\n");
        return chat_template(chat_template_kind::plain);
    }
    auto known = chat_template::from_name(stored);
    if (!known)
        throw error("the model's chat template '" + stored + "' is not one this kiln knows (" +
                    chat_template::name_list() + "); pick one with --chat-template");
    return *known;
}

void print_context_full(const chat_session& session) {
    std::fprintf(stderr, "kiln: context of %d tokens is full; /reset to start over\n", session.context_length());
}

void run_chat(const chat_args& args) {
    requested_template(args);  // a bad name fails before the model loads
    auto m = model::load(args.model_path);
    const chat_template tmpl = choose_template(args, *m);
    tokenizer tok(m->vocab());
    thread_pool pool(args.engine.threads);
    std::unique_ptr<language_model> lm = make_engine(m, pool, args.engine);
    if (args.verbose) print_engine(args.model_path, *m, *lm, pool, args.engine);
    sampler sample(args.sampling, size_t(lm->vocab_size()));
    chat_session session(*lm, tok, m->vocab(), tmpl, sample, args.system);

    const bool interactive = isatty(STDIN_FILENO);
    if (interactive)
        std::fprintf(stderr, "kiln: chat template %s; /reset starts over, /exit quits\n", std::string(tmpl.name()).c_str());
    std::string line;
    int turn_number = 0;
    while (true) {
        if (interactive) {
            std::fputs("> ", stdout);
            std::fflush(stdout);
        }
        if (!std::getline(std::cin, line)) break;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        if (line == "/exit" || line == "/quit") break;
        if (line == "/reset") {
            session.reset();
            if (interactive) std::fprintf(stderr, "kiln: conversation reset\n");
            continue;
        }
        if (line.front() == '/') {
            std::fprintf(stderr, "kiln: unknown command '%s' (/reset, /exit)\n", line.c_str());
            continue;
        }
        ++turn_number;
        // Replies start after the assistant header; the model's leading space is not shown.
        bool started = false;
        const chat_turn turn = session.send(line, args.n_predict, [&](std::string_view text) {
            if (!started) {
                const size_t first = text.find_first_not_of(" \t\n");
                if (first == std::string_view::npos) return;
                text.remove_prefix(first);
                started = true;
            }
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
        });
        // A newline after every turn's reply, even an empty one (the turn did not fit).
        std::fputc('\n', stdout);
        std::fflush(stdout);
        if (args.verbose)
            std::fprintf(stderr,
                         "kiln: turn %d: prompt tokens processed: %d (%.1f t/s), reply tokens: %d (%.1f t/s), "
                         "context %d/%d\n",
                         turn_number, turn.prompt_tokens,
                         turn.prompt_seconds > 0 ? turn.prompt_tokens / turn.prompt_seconds : 0.0, turn.reply_tokens,
                         turn.reply_seconds > 0 ? turn.reply_tokens / turn.reply_seconds : 0.0, session.position(),
                         session.context_length());
        if (turn.context_full) print_context_full(session);
    }
    if (interactive) std::fputc('\n', stdout);
}

}  // namespace

void setup_chat(CLI::App& app) {
    auto args = std::make_shared<chat_args>();
    auto* cmd = app.add_subcommand(
        "chat",
        "Chat with a model: on a terminal, type a message per line (/reset starts over, /exit quits); from a "
        "pipe or file, each line of stdin is one user turn and each reply ends with a newline. Earlier turns stay "
        "in the KV cache and are never processed again. Models without a chat template use 'plain' "
        "(User:/Assistant: lines) unless --chat-template names one");
    cmd->add_option("-m,--model", args->model_path, "Model file (.kiln)")->required();
    cmd->add_option("--system", args->system, "System message at the start of the conversation");
    cmd->add_option("--chat-template", args->chat_template,
                    "Chat template, overriding the model's: " + chat_template::name_list());
    cmd->add_option("-n,--n-predict", args->n_predict, "Most tokens per reply")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    add_sampling_options(cmd, args->sampling);
    add_engine_options(cmd, args->engine);
    cmd->add_flag("-v,--verbose", args->verbose,
                  "Print model details, and per turn the prompt tokens processed, reply tokens and context used");
    cmd->callback([args] { run_chat(*args); });
}

}  // namespace kiln::cli
