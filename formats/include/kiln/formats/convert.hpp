// Turning any model_source into a .kiln file: choose each tensor's stored type, quantize with the
// reference quantizers, write atomically.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "kiln/formats/model_source.hpp"
#include "kiln/formats/tensor_type.hpp"

namespace kiln {

struct convert_options {
    tensor_type type = tensor_type::f32;          // for 2-D weight matrices
    std::optional<tensor_type> embedding_type;    // token_embd and output; default below
    // Called after each tensor: (done, total, name).
    std::function<void(size_t, size_t, const std::string&)> progress;
};

// token_embd's and output's type when none is asked for: f16 for q8_0, q8_0 for q4_0 and q4_k,
// else the matrices' type.
tensor_type default_embedding_type(tensor_type type);

// The type a tensor is stored in: 1-D tensors stay f32; a matrix whose rows do not fit the
// requested type's block falls back to q4_0 (for q4_k, when rows fit 32), else f16 when the
// requested type is quantized, else f32.
tensor_type choose_stored_type(const std::string& name, const std::vector<uint64_t>& shape,
                               const convert_options& options);

void write_kiln(const model_source& source, const convert_options& options, const std::filesystem::path& out);

}  // namespace kiln
