// The built-in chat templates, each written from its model's published Jinja template (see
// chat_template.hpp). Every template renders so that the prompt of a conversation is a prefix of
// the prompt after one more turn: a chat can then feed only the new turn's tokens.
#include "kiln/formats/chat_template.hpp"

#include <algorithm>
#include <array>

namespace kiln {
namespace {

struct builtin {
    chat_template_kind kind;
    const char* name;
};

constexpr std::array<builtin, 8> builtins = {{
    {chat_template_kind::llama2, "llama2"},
    {chat_template_kind::llama3, "llama3"},
    {chat_template_kind::chatml, "chatml"},
    {chat_template_kind::mistral, "mistral"},
    {chat_template_kind::deepseek3, "deepseek3"},
    {chat_template_kind::zephyr, "zephyr"},
    {chat_template_kind::phi3, "phi3"},
    {chat_template_kind::plain, "plain"},
}};

// DeepSeek's markers use U+FF5C (fullwidth vertical bar) and U+2581 (lower one-eighth block).
const std::string deepseek_end = "<｜end▁of▁sentence｜>";

// Python's str.strip() / Jinja's trim, for the ASCII whitespace templates meet in practice.
std::string trim(std::string_view s) {
    constexpr std::string_view space = " \t\n\r\f\v";
    const size_t begin = s.find_first_not_of(space);
    if (begin == std::string_view::npos) return {};
    return std::string(s.substr(begin, s.find_last_not_of(space) - begin + 1));
}

// Llama 2 chat (meta-llama/Llama-2-*-chat-hf): a leading system message goes inside the first
// [INST] block between <<SYS>> markers; every user turn starts with BOS.
std::string render_llama2(std::span<const chat_message> messages, bool, const chat_special_tokens& t) {
    std::string out, system;
    bool has_system = !messages.empty() && messages[0].role == "system";
    if (has_system) system = messages[0].content;
    for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i) {
        const chat_message& m = messages[i];
        std::string content = m.content;
        if (has_system && i == 1) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
        if (m.role == "user") out += t.bos + "[INST] " + trim(content) + " [/INST]";
        else if (m.role == "assistant") (out += ' ') += trim(content) + ' ' + t.eos;
    }
    return out;
}

// Llama 3 instruct: a header per message, content trimmed, <|eot_id|> after each.
std::string render_llama3(std::span<const chat_message> messages, bool add_generation_prompt,
                          const chat_special_tokens& t) {
    std::string out = messages.empty() ? "" : t.bos;
    for (const chat_message& m : messages)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
    if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return out;
}

// ChatML (Qwen2, Qwen2.5 and Qwen3 without tools or thinking, and many fine-tunes).
std::string render_chatml(std::span<const chat_message> messages, bool add_generation_prompt,
                          const chat_special_tokens&) {
    std::string out;
    for (const chat_message& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
}

// Mistral instruct v0.1/v0.2: [INST] blocks, the reply right after [/INST], EOS closing it. The
// template has no system role; the system text goes before the first user message.
std::string render_mistral(std::span<const chat_message> messages, bool, const chat_special_tokens& t) {
    std::string out = t.bos, system;
    bool first_user = true;
    for (const chat_message& m : messages) {
        if (m.role == "system") {
            system += (system.empty() ? "" : "\n\n") + m.content;
        } else if (m.role == "user") {
            const std::string prefix = first_user && !system.empty() ? system + "\n\n" : "";
            out += "[INST] " + prefix + m.content + " [/INST]";
            first_user = false;
        } else if (m.role == "assistant") {
            out += m.content + t.eos;
        }
    }
    return out;
}

// DeepSeek V3 / R1 (the <｜User｜> / <｜Assistant｜> markers use fullwidth bars): the system
// messages, joined, right after BOS; no separators between turns.
std::string render_deepseek3(std::span<const chat_message> messages, bool add_generation_prompt,
                             const chat_special_tokens& t) {
    std::string system;
    bool first_system = true;
    for (const chat_message& m : messages) {
        if (m.role != "system") continue;
        system += (first_system ? "" : "\n\n") + m.content;
        first_system = false;
    }
    std::string out = t.bos + system;
    for (const chat_message& m : messages) {
        if (m.role == "user") out += "<｜User｜>" + m.content;
        else if (m.role == "assistant") out += "<｜Assistant｜>" + m.content + deepseek_end;
    }
    if (add_generation_prompt) out += "<｜Assistant｜>";
    return out;
}

// Zephyr (HuggingFaceH4/zephyr-7b-beta): <|role|> lines, EOS and a newline after each message.
std::string render_zephyr(std::span<const chat_message> messages, bool add_generation_prompt,
                          const chat_special_tokens& t) {
    std::string out;
    for (const chat_message& m : messages) out += "<|" + m.role + "|>\n" + m.content + t.eos + "\n";
    if (add_generation_prompt) out += "<|assistant|>\n";
    return out;
}

// Phi-3 instruct: like Zephyr with <|end|> closing each message, BOS in front.
std::string render_phi3(std::span<const chat_message> messages, bool add_generation_prompt,
                        const chat_special_tokens& t) {
    std::string out = t.bos;
    for (const chat_message& m : messages) out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
    if (add_generation_prompt) out += "<|assistant|>\n";
    return out;
}

// kiln's fallback for models without a chat template (base models): plain labelled lines.
std::string render_plain(std::span<const chat_message> messages, bool add_generation_prompt,
                         const chat_special_tokens&) {
    std::string out;
    for (const chat_message& m : messages) {
        if (m.role == "system") out += m.content + "\n\n";
        else if (m.role == "user") out += "User: " + m.content + "\n";
        else if (m.role == "assistant") out += "Assistant: " + trim(m.content) + "\n";
    }
    if (add_generation_prompt) out += "Assistant:";
    return out;
}

}  // namespace

std::optional<chat_template> chat_template::from_name(std::string_view name) {
    for (const builtin& b : builtins)
        if (name == b.name) return chat_template(b.kind);
    return std::nullopt;
}

const std::vector<std::string>& chat_template::names() {
    static const std::vector<std::string> all = [] {
        std::vector<std::string> v;
        for (const builtin& b : builtins) v.emplace_back(b.name);
        return v;
    }();
    return all;
}

std::string chat_template::name_list() {
    std::string list;
    for (const std::string& n : names()) list += (list.empty() ? "" : ", ") + n;
    return list;
}

std::string_view chat_template::name() const {
    for (const builtin& b : builtins)
        if (b.kind == kind_) return b.name;
    return "?";
}

chat_special_tokens chat_template::default_tokens() const {
    switch (kind_) {
        case chat_template_kind::llama3: return {"<|begin_of_text|>", "<|end_of_text|>"};
        case chat_template_kind::chatml: return {"", "<|im_end|>"};
        case chat_template_kind::deepseek3: return {"<｜begin▁of▁sentence｜>", deepseek_end};
        case chat_template_kind::phi3: return {"<s>", "<|endoftext|>"};
        default: return {"<s>", "</s>"};
    }
}

std::string chat_template::render(std::span<const chat_message> messages, bool add_generation_prompt,
                                  const chat_special_tokens& tokens) const {
    switch (kind_) {
        case chat_template_kind::llama2: return render_llama2(messages, add_generation_prompt, tokens);
        case chat_template_kind::llama3: return render_llama3(messages, add_generation_prompt, tokens);
        case chat_template_kind::chatml: return render_chatml(messages, add_generation_prompt, tokens);
        case chat_template_kind::mistral: return render_mistral(messages, add_generation_prompt, tokens);
        case chat_template_kind::deepseek3: return render_deepseek3(messages, add_generation_prompt, tokens);
        case chat_template_kind::zephyr: return render_zephyr(messages, add_generation_prompt, tokens);
        case chat_template_kind::phi3: return render_phi3(messages, add_generation_prompt, tokens);
        case chat_template_kind::plain: return render_plain(messages, add_generation_prompt, tokens);
    }
    return {};
}

bool chat_template::bos_in_text() const {
    switch (kind_) {
        case chat_template_kind::chatml:
        case chat_template_kind::zephyr:
        case chat_template_kind::plain: return false;
        default: return true;
    }
}

std::string chat_template::reply_end(const chat_special_tokens& tokens) const {
    switch (kind_) {
        // Llama 2's Jinja writes " </s>", but the model samples </s> right after its text.
        case chat_template_kind::llama2:
        case chat_template_kind::mistral: return tokens.eos;
        case chat_template_kind::llama3: return "<|eot_id|>";
        case chat_template_kind::chatml: return "<|im_end|>\n";
        case chat_template_kind::deepseek3: return deepseek_end;
        case chat_template_kind::zephyr: return tokens.eos + "\n";
        case chat_template_kind::phi3: return "<|end|>\n";
        case chat_template_kind::plain: return "\n";
    }
    return {};
}

std::vector<std::string> chat_template::stop_texts(const chat_special_tokens& tokens) const {
    std::vector<std::string> texts;
    switch (kind_) {
        case chat_template_kind::llama3: texts = {"<|eot_id|>"}; break;
        case chat_template_kind::chatml: texts = {"<|im_end|>", "<|endoftext|>"}; break;
        case chat_template_kind::deepseek3: texts = {deepseek_end}; break;
        case chat_template_kind::phi3: texts = {"<|end|>", "<|endoftext|>"}; break;
        default: break;
    }
    texts.push_back(tokens.eos);
    std::erase(texts, std::string());
    std::sort(texts.begin(), texts.end());
    texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
    return texts;
}

}  // namespace kiln
