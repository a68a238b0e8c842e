// Hugging Face tokenizer.json -> vocabulary: tokens, added tokens, merges, pre-tokenizer and special ids.
#include "kiln/formats/hf_tokenizer.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/formats/error.hpp"

namespace kiln {

namespace {

using nlohmann::json;

const std::string sentencepiece_space = "\xE2\x96\x81";

// Pre-tokenizer regexes that identify a model family (the runtime holds the full sets).
const std::string llama3_regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const std::string qwen2_regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const std::string gpt2_regex = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";

json read_json_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw file_error(path, "cannot open file");
    try {
        return json::parse(in);
    } catch (const json::exception& problem) {
        throw file_error(path, std::string("not valid JSON: ") + problem.what());
    }
}

// Every node of a normalizer / pre-tokenizer tree, flattened: "Sequence" nodes hold their parts
// under "normalizers" or "pretokenizers".
void flatten(const json& node, std::vector<const json*>& out) {
    if (!node.is_object()) return;
    for (const char* list_key : {"normalizers", "pretokenizers"}) {
        if (auto parts = node.find(list_key); parts != node.end() && parts->is_array()) {
            for (const json& part : *parts) flatten(part, out);
            return;
        }
    }
    out.push_back(&node);
}

std::vector<const json*> flattened(const json& root, const char* key) {
    std::vector<const json*> nodes;
    if (auto found = root.find(key); found != root.end()) flatten(*found, nodes);
    return nodes;
}

std::string node_type(const json* node) { return node->value("type", std::string()); }

// "a b" or ["a", "b"]: both spellings of a merge rule occur in the wild.
std::string merge_rule(const json& merge) {
    if (merge.is_string()) return merge.get<std::string>();
    if (merge.is_array() && merge.size() == 2) return merge[0].get<std::string>() + " " + merge[1].get<std::string>();
    throw error("a merge rule is neither \"a b\" nor [\"a\", \"b\"]");
}

// A special token given in tokenizer_config.json as a string, as {"content": ...}, or null.
std::optional<std::string> token_text(const json& config, const char* key) {
    auto found = config.find(key);
    if (found == config.end() || found->is_null()) return std::nullopt;
    if (found->is_string()) return found->get<std::string>();
    if (found->is_object() && found->contains("content")) return (*found)["content"].get<std::string>();
    return std::nullopt;
}

bool is_byte_piece(const std::string& piece) {
    return piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>' &&
           std::isxdigit(static_cast<unsigned char>(piece[3])) && std::isxdigit(static_cast<unsigned char>(piece[4]));
}

std::string detect_pretokenizer(const std::filesystem::path& path, const json& root) {
    std::vector<std::string> split_regexes;
    bool byte_level_regex = false;
    for (const json* node : flattened(root, "pre_tokenizer")) {
        const std::string type = node_type(node);
        if (type == "Split") {
            const json& pattern = (*node)["pattern"];
            if (!pattern.contains("Regex")) throw file_error(path, "Split pre-tokenizer without a regex is not supported");
            split_regexes.push_back(pattern["Regex"].get<std::string>());
        } else if (type == "ByteLevel") {
            byte_level_regex = node->value("use_regex", true);
            if (node->value("add_prefix_space", false))
                throw file_error(path, "ByteLevel pre-tokenizer with add_prefix_space is not supported");
        } else {
            throw file_error(path, "pre-tokenizer " + type + " is not supported for byte-level BPE");
        }
    }
    if (byte_level_regex) split_regexes.insert(split_regexes.begin(), gpt2_regex);
    if (split_regexes.size() == 1) {
        if (split_regexes[0] == gpt2_regex) return "gpt-2";
        if (split_regexes[0] == llama3_regex) return "llama3";
        if (split_regexes[0] == qwen2_regex) return "qwen2";
    }
    if (split_regexes.size() == 3 && split_regexes[0] == R"re(\p{N}{1,3})re") return "deepseek-v3";
    if (split_regexes.size() == 5 && split_regexes[0] == "[\r\n]" && split_regexes[1] == R"re(\s?\p{L}+)re")
        return "deepseek-coder";
    if (split_regexes.size() == 6 && split_regexes[0] == "[\r\n]" && split_regexes[5] == R"re(\p{N}+)re")
        return "deepseek-llm";
    throw file_error(path, "the pre-tokenizer regexes match no model family kiln knows (gpt-2, llama3, qwen2, "
                           "deepseek-llm, deepseek-coder, deepseek-v3)");
}

// SentencePiece-style: the text's spaces become "▁" (normalizer or Metaspace) and unknown
// characters fall back to <0xNN> byte tokens.
bool is_sentencepiece_style(const json& root) {
    if (root["model"].value("byte_fallback", false)) return true;
    for (const json* node : flattened(root, "pre_tokenizer"))
        if (node_type(node) == "Metaspace") return true;
    for (const json* node : flattened(root, "normalizer"))
        if (node_type(node) == "Replace" && node->value("content", std::string()) == sentencepiece_space) return true;
    return false;
}

bool adds_space_prefix(const json& root) {
    for (const json* node : flattened(root, "normalizer"))
        if (node_type(node) == "Prepend" && node->value("prepend", std::string()) == sentencepiece_space) return true;
    for (const json* node : flattened(root, "pre_tokenizer")) {
        if (node_type(node) != "Metaspace") continue;
        if (node->contains("prepend_scheme")) return (*node)["prepend_scheme"].get<std::string>() != "never";
        return node->value("add_prefix_space", true);
    }
    return false;
}

// The first special token of the post-processor's single-sequence template, if it leads the template.
std::optional<std::string> template_bos(const json& root) {
    auto post = root.find("post_processor");
    if (post == root.end() || !post->is_object() || post->value("type", std::string()) != "TemplateProcessing")
        return std::nullopt;
    const json& single = (*post)["single"];
    if (!single.is_array() || single.empty() || !single[0].contains("SpecialToken")) return std::nullopt;
    return single[0]["SpecialToken"]["id"].get<std::string>();
}

}  // namespace

vocabulary load_hf_tokenizer(const std::filesystem::path& tokenizer_json) {
    const json root = read_json_file(tokenizer_json);
    try {
        const json& model = root.at("model");
        const std::string model_type = model.value("type", std::string("BPE"));
        if (model_type != "BPE")
            throw file_error(tokenizer_json, "tokenizer model " + model_type + " is not supported (only BPE)");

        // Ids come from the model's vocab and from added_tokens; gaps become unused placeholders.
        const json& model_vocab = model.at("vocab");
        const json added_tokens = root.value("added_tokens", json::array());
        int64_t max_id = -1;
        for (const auto& [piece, id] : model_vocab.items()) max_id = std::max<int64_t>(max_id, id.get<int64_t>());
        for (const json& added : added_tokens) max_id = std::max<int64_t>(max_id, added.at("id").get<int64_t>());
        if (max_id < 0) throw file_error(tokenizer_json, "the vocabulary is empty");
        if (max_id >= std::numeric_limits<int32_t>::max())
            throw file_error(tokenizer_json, "token id " + std::to_string(max_id) + " is too large");

        vocabulary vocab;
        const bool sentencepiece = is_sentencepiece_style(root);
        vocab.model = sentencepiece ? "llama-spm" : "byte-bpe";
        const size_t token_count = static_cast<size_t>(max_id) + 1;
        vocab.tokens.assign(token_count, std::string());
        vocab.types.assign(token_count, static_cast<int32_t>(token_kind::unused));
        vocab.scores.assign(token_count, 0.0f);
        std::vector<bool> filled(token_count, false);
        for (const auto& [piece, id_value] : model_vocab.items()) {
            const int64_t id = id_value.get<int64_t>();
            if (id < 0) throw file_error(tokenizer_json, "token \"" + piece + "\" has a negative id");
            vocab.tokens[id] = piece;
            vocab.types[id] = static_cast<int32_t>(sentencepiece && is_byte_piece(piece) ? token_kind::byte
                                                                                          : token_kind::normal);
            filled[id] = true;
        }
        for (const json& added : added_tokens) {
            const int64_t id = added.at("id").get<int64_t>();
            if (id < 0) throw file_error(tokenizer_json, "an added token has a negative id");
            vocab.tokens[id] = added.at("content").get<std::string>();
            vocab.types[id] = static_cast<int32_t>(added.value("special", false) ? token_kind::control
                                                                                 : token_kind::user_defined);
            filled[id] = true;
        }
        for (size_t id = 0; id < token_count; ++id)
            if (!filled[id]) vocab.tokens[id] = "[PAD" + std::to_string(id) + "]";

        std::unordered_map<std::string, int64_t> id_of;
        id_of.reserve(token_count);
        for (size_t id = 0; id < token_count; ++id) id_of.emplace(vocab.tokens[id], static_cast<int64_t>(id));
        auto lookup = [&](const std::optional<std::string>& text) -> int64_t {
            if (!text) return -1;
            auto found = id_of.find(*text);
            return found == id_of.end() ? -1 : found->second;
        };

        vocab.unk_id = -1;
        if (auto unk = model.find("unk_token"); unk != model.end() && unk->is_string()) {
            vocab.unk_id = lookup(unk->get<std::string>());
            if (vocab.unk_id >= 0) vocab.types[vocab.unk_id] = static_cast<int32_t>(token_kind::unknown);
        }

        const json& merges = model.at("merges");
        if (sentencepiece) {
            // SentencePiece merges by the score of the merged piece; the converter wrote the merges in
            // score order, so a piece's rank is its score. Pieces no merge makes keep a score lower
            // than any merge (SentencePiece gives such pieces -1e9 too).
            std::vector<float>& scores = vocab.scores;
            for (size_t id = 0; id < token_count; ++id)
                if (vocab.types[id] == static_cast<int32_t>(token_kind::normal)) scores[id] = -1e9f;
            for (size_t rank = 0; rank < merges.size(); ++rank) {
                std::string rule = merge_rule(merges[rank]);
                const size_t separator = rule.find(' ', 1);
                if (separator == std::string::npos) continue;
                rule.erase(separator, 1);
                auto found = id_of.find(rule);
                if (found != id_of.end() && scores[found->second] < -static_cast<float>(rank))
                    scores[found->second] = -static_cast<float>(rank);
            }
            vocab.add_space_prefix = adds_space_prefix(root);
        } else {
            vocab.merges.reserve(merges.size());
            for (const json& merge : merges) vocab.merges.push_back(merge_rule(merge));
            vocab.pre = detect_pretokenizer(tokenizer_json, root);
            vocab.add_space_prefix = false;
        }

        // Special ids: tokenizer_config.json knows them; without it, the post-processor's template.
        const std::filesystem::path config_path = tokenizer_json.parent_path() / "tokenizer_config.json";
        json config = json::object();
        if (std::filesystem::exists(config_path)) config = read_json_file(config_path);
        const std::optional<std::string> bos_text =
            config.contains("bos_token") ? token_text(config, "bos_token") : template_bos(root);
        vocab.bos_id = lookup(bos_text);
        vocab.eos_id = lookup(token_text(config, "eos_token"));
        if (auto flag = config.find("add_bos_token"); flag != config.end() && flag->is_boolean())
            vocab.add_bos = flag->get<bool>() && vocab.bos_id >= 0;
        else
            vocab.add_bos = vocab.bos_id >= 0;

        vocab.validate();
        return vocab;
    } catch (const file_error&) {
        throw;
    } catch (const std::exception& problem) {
        throw file_error(tokenizer_json, problem.what());
    }
}

}  // namespace kiln
