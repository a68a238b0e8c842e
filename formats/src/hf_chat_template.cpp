// The chat_template entry of a Hugging Face tokenizer_config.json.
#include <fstream>
#include <nlohmann/json.hpp>

#include "kiln/formats/error.hpp"
#include "kiln/formats/hf_tokenizer.hpp"

namespace kiln {

std::string read_hf_chat_template(const std::filesystem::path& tokenizer_config_json) {
    std::ifstream in(tokenizer_config_json, std::ios::binary);
    if (!in) throw file_error(tokenizer_config_json, "cannot open");
    const nlohmann::json config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) throw file_error(tokenizer_config_json, "is not a JSON object");
    const auto found = config.find("chat_template");
    if (found == config.end() || found->is_null()) return {};
    if (found->is_string()) return found->get<std::string>();
    // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
    if (found->is_array() && !found->empty()) {
        const nlohmann::json* chosen = &(*found)[0];
        for (const auto& entry : *found)
            if (entry.is_object() && entry.value("name", std::string()) == "default") chosen = &entry;
        if (chosen->is_object() && chosen->contains("template") && (*chosen)["template"].is_string())
            return (*chosen)["template"].get<std::string>();
    }
    throw file_error(tokenizer_config_json, "\"chat_template\" is neither a string nor a list of named templates");
}

}  // namespace kiln
