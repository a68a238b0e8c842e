// Reading safetensors files: one file, or a sharded set described by model.safetensors.index.json.
// The JSON header is validated against the file (offsets inside the data, sizes = shape x dtype
// size, no overlap) and tensor data is read lazily from a memory map.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace kiln {

namespace detail {
class mapped_file;
}

struct safetensors_tensor {
    std::string name;
    std::string dtype;             // as written: "F32", "F16", "BF16", "I64", ...
    std::vector<uint64_t> shape;   // outermost first (row-major), may be empty for a scalar
    uint64_t offset = 0;           // from the start of the file
    uint64_t size = 0;             // bytes
    uint64_t n_elements() const;
};

// Bytes per element of a safetensors dtype name; 0 when the name is unknown.
uint64_t safetensors_dtype_size(const std::string& dtype);

// One open .safetensors file. Cheap to copy: copies share the memory map.
class safetensors_file {
public:
    // Throws kiln::file_error naming the file and the problem.
    static safetensors_file open(const std::filesystem::path& path);

    const std::filesystem::path& path() const { return path_; }
    const std::map<std::string, safetensors_tensor>& tensors() const { return tensors_; }
    const std::map<std::string, std::string>& header_metadata() const { return metadata_; }  // "__metadata__"
    const safetensors_tensor* find(const std::string& name) const;

    std::span<const std::byte> tensor_bytes(const safetensors_tensor& tensor) const;
    // Decodes F32, F16 or BF16 into out (out.size() must be n_elements); file_error otherwise.
    void read_f32(const safetensors_tensor& tensor, std::span<float> out) const;

private:
    safetensors_file() = default;
    std::filesystem::path path_;
    std::shared_ptr<const detail::mapped_file> map_;
    std::map<std::string, safetensors_tensor> tensors_;
    std::map<std::string, std::string> metadata_;
};

// The weights of a Hugging Face folder: model.safetensors.index.json with its shards when present,
// else the single model.safetensors.
class safetensors_set {
public:
    // Throws kiln::file_error naming the folder, index or shard and the problem: no weights,
    // malformed index, shard names leaving the folder, a tensor the index lists but its shard lacks.
    static safetensors_set open_folder(const std::filesystem::path& dir);

    const std::vector<std::string>& names() const { return names_; }  // sorted
    // The file holding `name`, or nullptr when no file does.
    std::shared_ptr<const safetensors_file> file_of(const std::string& name) const;

private:
    std::vector<std::shared_ptr<const safetensors_file>> files_;
    std::map<std::string, size_t> file_index_;  // tensor name -> index into files_
    std::vector<std::string> names_;
};

}  // namespace kiln
