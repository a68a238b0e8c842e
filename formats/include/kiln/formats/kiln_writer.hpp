// Writing a .kiln file atomically: a temporary file beside the target, renamed at the end.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "kiln/formats/metadata.hpp"
#include "kiln/formats/tensor_type.hpp"

namespace kiln {

class kiln_writer {
public:
    // Fills the tensor's bytes (already sized from type and shape). Called once, in table order,
    // so memory use is bounded by the largest tensor.
    using fill_fn = std::function<void(std::span<std::byte> out)>;
    // Called after each tensor is written: (tensors done, tensors total).
    using progress_fn = std::function<void(size_t done, size_t total)>;

    explicit kiln_writer(metadata meta) : meta_(std::move(meta)) {}

    // Throws kiln::error if the name repeats, the shape is empty or a row does not fit the type.
    // The tensor's layout is the one its type is stored with (tensor_layout): fill writes rows
    // as quant::quantize_row does.
    void add_tensor(std::string name, tensor_type type, std::vector<uint64_t> shape, fill_fn fill);
    // Convenience for tensors already in memory; bytes.size() must match.
    void add_tensor_bytes(std::string name, tensor_type type, std::vector<uint64_t> shape,
                          std::vector<std::byte> bytes);

    // Writes everything to `path` (temp file + rename). On any failure the temp file is removed
    // and the exception propagates; `path` is left untouched.
    void write(const std::filesystem::path& path, const progress_fn& progress = {}) const;

private:
    struct pending {
        std::string name;
        tensor_type type;
        uint32_t layout;
        std::vector<uint64_t> shape;
        uint64_t size;
        fill_fn fill;
    };
    metadata meta_;
    std::vector<pending> tensors_;
};

// Bytes a tensor of this type and shape takes; throws when the last dim does not fit the type.
uint64_t tensor_bytes(tensor_type type, const std::vector<uint64_t>& shape);

}  // namespace kiln
