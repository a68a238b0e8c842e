// Importing a GGUF "deepseek2" model (llama.cpp's converter of DeepseekV2ForCausalLM) as a
// model_source: deepseek2.* keys, attn_k_b/attn_v_b as they are (newer files) or split from the
// combined attn_kv_b (older files), experts already stacked (formats/SPEC_deepseek2.md).
#pragma once
#include "kiln/formats/gguf.hpp"
#include "kiln/formats/model_source.hpp"

namespace kiln {

// Throws kiln::file_error naming the file and the problem.
model_source load_gguf_deepseek2(const gguf_file& file);

}  // namespace kiln
