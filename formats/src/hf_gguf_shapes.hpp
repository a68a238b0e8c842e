// The kiln tensor names and shapes of a llama-family model, checked by both the GGUF and the
// Hugging Face importers before they hand a model_source to the converter.
#pragma once
#include <filesystem>
#include <vector>

#include "kiln/formats/model_config.hpp"
#include "kiln/formats/model_source.hpp"

namespace kiln::detail {

// Every required tensor (token_embd, output_norm, the nine per-block tensors) present with the
// shape the config implies; optional ones (output, blk.N.attn_{q,k,v}_bias, rope_freqs) with the
// right shape when present; nothing else. Throws file_error naming `path` and the first problem.
void check_llama_tensors(const std::filesystem::path& path, const llama_config& config,
                         const std::vector<source_tensor>& tensors);

}  // namespace kiln::detail
