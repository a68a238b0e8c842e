// Built-in chat templates: how a conversation becomes the prompt text a chat model was trained on,
// with its special tokens written out ("<|start_header_id|>", "<|im_end|>", ...). kiln does not run
// Jinja: it recognises a model's Jinja template by content at convert time (detect_chat_template)
// and stores the built-in's name in the .kiln file (tokenizer.chat_template).
#pragma once
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct chat_message {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

// The texts of BOS and EOS: templates that write {{ bos_token }} / {{ eos_token }} in Jinja take
// them from the model's vocabulary, so they are parameters here too (empty: the model has none).
struct chat_special_tokens {
    std::string bos;
    std::string eos;
};

enum class chat_template_kind { llama2, llama3, chatml, mistral, deepseek3, zephyr, phi3, plain };

class chat_template {
public:
    // The built-in of that name, or nullopt.
    static std::optional<chat_template> from_name(std::string_view name);
    // Every built-in name, in a fixed order, for help and error messages.
    static const std::vector<std::string>& names();
    // "llama2, llama3, ..." for messages.
    static std::string name_list();

    explicit chat_template(chat_template_kind kind) : kind_(kind) {}
    chat_template_kind kind() const { return kind_; }
    std::string_view name() const;

    // The BOS/EOS texts of the family the template comes from (Llama 2's "<s>", Llama 3's
    // "<|begin_of_text|>", ...), used when rendering without a vocabulary.
    chat_special_tokens default_tokens() const;

    // The prompt for `messages`, exactly as the model's Jinja template renders it (content is
    // trimmed where the Jinja trims it); with add_generation_prompt it ends with the assistant
    // header, so the model's reply comes next. Templates without a system role (Mistral) put the
    // system text in front of the first user message.
    std::string render(std::span<const chat_message> messages, bool add_generation_prompt,
                       const chat_special_tokens& tokens) const;
    std::string render(std::span<const chat_message> messages, bool add_generation_prompt) const {
        return render(messages, add_generation_prompt, default_tokens());
    }

    // True when the rendered text starts with BOS itself, so the prompt must be encoded without
    // adding another one; false when the tokenizer's add_bos decides.
    bool bos_in_text() const;
    // What follows an assistant reply's content when the reply is closed: the end-of-turn token
    // and any separator after it ("<|im_end|>\n"). A chat feeds it after each reply.
    std::string reply_end(const chat_special_tokens& tokens) const;
    // The texts of the tokens that end a reply (end of turn, EOS). Each is one special token in
    // the model's vocabulary; texts the vocabulary lacks are simply never sampled.
    std::vector<std::string> stop_texts(const chat_special_tokens& tokens) const;

private:
    chat_template_kind kind_;
};

// The built-in a Jinja chat template (tokenizer_config.json's chat_template, GGUF's
// tokenizer.chat_template) corresponds to, recognised by the special tokens and markers it
// writes; nullopt when it matches none.
std::optional<chat_template> detect_chat_template(std::string_view jinja);

}  // namespace kiln
