// Recognising a model's Jinja chat template by the markers it writes. Jinja itself is not parsed:
// each family spells its turns with tokens no other family uses, which is enough to choose a
// built-in. The order matters where markers overlap (Phi-3 and Zephyr share <|user|>).
#include "kiln/formats/chat_template.hpp"

namespace kiln {
namespace {

bool has(std::string_view text, std::string_view marker) { return text.find(marker) != std::string_view::npos; }

}  // namespace

std::optional<chat_template> detect_chat_template(std::string_view jinja) {
    if (has(jinja, "<|start_header_id|>") && has(jinja, "<|eot_id|>")) return chat_template(chat_template_kind::llama3);
    if (has(jinja, "<|im_start|>")) return chat_template(chat_template_kind::chatml);
    if (has(jinja, "<｜User｜>") || has(jinja, "<｜Assistant｜>")) return chat_template(chat_template_kind::deepseek3);
    if (has(jinja, "<|assistant|>") && has(jinja, "<|end|>")) return chat_template(chat_template_kind::phi3);
    if (has(jinja, "<|assistant|>") && has(jinja, "<|user|>")) return chat_template(chat_template_kind::zephyr);
    if (has(jinja, "<<SYS>>")) return chat_template(chat_template_kind::llama2);
    if (has(jinja, "[INST]")) return chat_template(chat_template_kind::mistral);
    return std::nullopt;
}

}  // namespace kiln
