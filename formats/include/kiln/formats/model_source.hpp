// What every importer (llama2.c, GGUF, safetensors) produces and `convert` consumes: metadata plus
// a list of tensors, each able to produce its values on demand so that memory stays bounded.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "kiln/formats/metadata.hpp"

namespace kiln {

struct source_tensor {
    std::string name;              // kiln name (SPEC.md "Tensor names")
    std::vector<uint64_t> shape;   // outermost first
    std::string source_type;       // e.g. "f32", "f16", "q4_0": shown to the user
    // Writes all n_elements values as f32 into out (already sized).
    std::function<void(std::span<float> out)> read_f32;
};

struct model_source {
    metadata meta;  // architecture, hyper-parameters, tokenizer
    std::vector<source_tensor> tensors;
};

}  // namespace kiln
