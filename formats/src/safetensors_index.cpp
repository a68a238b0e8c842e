// The weights of a Hugging Face folder: a single model.safetensors, or the shards listed by
// model.safetensors.index.json ("weight_map": tensor name -> shard file name).
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/formats/error.hpp"
#include "kiln/formats/safetensors.hpp"

namespace kiln {
namespace {

nlohmann::json read_json_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw file_error(path, "cannot open");
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw file_error(path, "malformed JSON");
    return j;
}

// A shard must be a plain file name inside the folder: an index must not reach elsewhere.
bool plain_file_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\\') == std::string::npos;
}

}  // namespace

safetensors_set safetensors_set::open_folder(const std::filesystem::path& dir) {
    safetensors_set set;
    const auto index_path = dir / "model.safetensors.index.json";
    const auto single_path = dir / "model.safetensors";
    if (std::filesystem::exists(index_path)) {
        const nlohmann::json index = read_json_file(index_path);
        if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
            throw file_error(index_path, "has no \"weight_map\" object");
        std::map<std::string, size_t> shard_slot;
        for (const auto& [tensor, shard] : index["weight_map"].items()) {
            if (!shard.is_string()) throw file_error(index_path, "weight_map entry '" + tensor + "' is not a file name");
            const std::string shard_name = shard.get<std::string>();
            if (!plain_file_name(shard_name))
                throw file_error(index_path, "shard name '" + shard_name + "' is not a file in the model folder");
            auto [it, inserted] = shard_slot.emplace(shard_name, set.files_.size());
            if (inserted) set.files_.push_back(std::make_shared<const safetensors_file>(safetensors_file::open(dir / shard_name)));
            const auto& file = *set.files_[it->second];
            if (!file.find(tensor))
                throw file_error(file.path(), "does not hold tensor '" + tensor + "', which " +
                                                  index_path.filename().string() + " places there");
            set.file_index_[tensor] = it->second;
        }
    } else if (std::filesystem::exists(single_path)) {
        set.files_.push_back(std::make_shared<const safetensors_file>(safetensors_file::open(single_path)));
        for (const auto& [name, t] : set.files_[0]->tensors()) set.file_index_[name] = 0;
    } else {
        throw file_error(dir, "no model.safetensors or model.safetensors.index.json");
    }
    for (const auto& [name, slot] : set.file_index_) set.names_.push_back(name);
    return set;
}

std::shared_ptr<const safetensors_file> safetensors_set::file_of(const std::string& name) const {
    auto it = file_index_.find(name);
    return it == file_index_.end() ? nullptr : files_[it->second];
}

}  // namespace kiln
