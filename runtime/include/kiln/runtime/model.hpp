// A loaded model: the mmapped .kiln file, its hyper-parameters and vocabulary, with every tensor
// the architecture needs checked for presence and shape once, at load.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "kiln/formats/kiln_file.hpp"
#include "kiln/formats/model_config.hpp"
#include "kiln/formats/vocabulary.hpp"

namespace kiln {

// The weights of one transformer block, as views into the file. Shapes: see formats/SPEC.md.
struct llama_layer_weights {
    const tensor_view* attn_norm;    // [dim]
    const tensor_view* attn_q;       // [n_heads*head_dim, dim]
    const tensor_view* attn_k;       // [n_kv_heads*head_dim, dim]
    const tensor_view* attn_v;       // [n_kv_heads*head_dim, dim]
    const tensor_view* attn_output;  // [dim, n_heads*head_dim]
    const tensor_view* attn_q_bias;  // [n_heads*head_dim] or null (Qwen2)
    const tensor_view* attn_k_bias;  // [n_kv_heads*head_dim] or null
    const tensor_view* attn_v_bias;  // [n_kv_heads*head_dim] or null
    const tensor_view* ffn_norm;     // [dim]
    const tensor_view* ffn_gate;     // [hidden, dim]
    const tensor_view* ffn_up;       // [hidden, dim]
    const tensor_view* ffn_down;     // [dim, hidden]
};

struct llama_weights {
    const tensor_view* token_embd;   // [vocab, dim]
    std::vector<llama_layer_weights> layers;
    const tensor_view* output_norm;  // [dim]
    const tensor_view* output;       // [vocab, dim]: token_embd when the classifier is shared
};

class model {
public:
    // Throws kiln::file_error naming the file and the missing or misshapen tensor.
    static std::shared_ptr<const model> load(const std::filesystem::path& path);

    const kiln_file& file() const { return file_; }
    const llama_config& config() const { return config_; }
    const vocabulary& vocab() const { return vocab_; }
    const llama_weights& weights() const { return weights_; }

private:
    explicit model(kiln_file file) : file_(std::move(file)) {}
    kiln_file file_;
    llama_config config_;
    vocabulary vocab_;
    llama_weights weights_;
};

// A whole tensor as f32 values (dequantized when stored in another type).
std::vector<float> tensor_to_f32(const tensor_view& tensor);

}  // namespace kiln
