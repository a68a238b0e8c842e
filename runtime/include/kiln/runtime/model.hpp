// A loaded model: the mmapped .kiln file, its hyper-parameters and vocabulary, with every tensor
// the architecture needs checked for presence and shape once, at load.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "kiln/formats/deepseek2_config.hpp"
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

// The weights of one deepseek2 block (formats/SPEC_deepseek2.md). Null: absent in this layer.
struct deepseek2_layer_weights {
    const tensor_view* attn_norm;       // [dim]
    const tensor_view* attn_q;          // [n_heads*qk_head_dim, dim] (q_lora_rank 0)
    const tensor_view* attn_q_a;        // [q_lora_rank, dim] (q_lora_rank > 0)
    const tensor_view* attn_q_a_norm;   // [q_lora_rank]
    const tensor_view* attn_q_b;        // [n_heads*qk_head_dim, q_lora_rank]
    const tensor_view* attn_kv_a_mqa;   // [kv_lora_rank + qk_rope_head_dim, dim]
    const tensor_view* attn_kv_a_norm;  // [kv_lora_rank]
    const tensor_view* attn_k_b;        // [n_heads, kv_lora_rank, qk_nope_head_dim]: W_UK^T per head
    const tensor_view* attn_v_b;        // [n_heads, v_head_dim, kv_lora_rank]: W_UV per head
    const tensor_view* attn_output;     // [dim, n_heads*v_head_dim]
    const tensor_view* ffn_norm;        // [dim]
    const tensor_view* ffn_gate;        // dense layers: [hidden, dim]
    const tensor_view* ffn_up;          // [hidden, dim]
    const tensor_view* ffn_down;        // [dim, hidden]
    const tensor_view* ffn_gate_inp;    // MoE layers: router [n_experts, dim], f32
    const tensor_view* ffn_gate_exps;   // [n_experts, expert_hidden, dim]
    const tensor_view* ffn_up_exps;     // [n_experts, expert_hidden, dim]
    const tensor_view* ffn_down_exps;   // [n_experts, dim, expert_hidden]
    const tensor_view* ffn_gate_shexp;  // [shared_hidden, dim] or null without shared experts
    const tensor_view* ffn_up_shexp;    // [shared_hidden, dim]
    const tensor_view* ffn_down_shexp;  // [dim, shared_hidden]
};

struct deepseek2_weights {
    std::vector<deepseek2_layer_weights> layers;  // token_embd, output_norm, output: llama_weights
};

class model {
public:
    // Throws kiln::file_error naming the file and the missing or misshapen tensor.
    static std::shared_ptr<const model> load(const std::filesystem::path& path);

    const kiln_file& file() const { return file_; }
    // "llama" or "deepseek2" (general.architecture).
    const std::string& architecture() const { return architecture_; }
    // For deepseek2 only dim, n_layers, n_heads, vocab_size, context_length and norm_eps are
    // meaningful (a summary for code that runs any architecture).
    const llama_config& config() const { return config_; }
    bool is_deepseek2() const { return architecture_ == "deepseek2"; }
    // deepseek2 files only (empty otherwise).
    const deepseek2_config& deepseek2() const { return deepseek2_; }
    const deepseek2_weights& deepseek2_layers() const { return deepseek2_weights_; }
    const vocabulary& vocab() const { return vocab_; }
    // Every architecture: token_embd, output_norm, output; llama files: the layers too.
    const llama_weights& weights() const { return weights_; }

private:
    explicit model(kiln_file file) : file_(std::move(file)) {}
    void bind_llama();
    void bind_deepseek2();
    kiln_file file_;
    std::string architecture_;
    llama_config config_;
    deepseek2_config deepseek2_;
    deepseek2_weights deepseek2_weights_;
    vocabulary vocab_;
    llama_weights weights_;
};

// A whole tensor as f32 values (dequantized when stored in another type).
std::vector<float> tensor_to_f32(const tensor_view& tensor);

}  // namespace kiln
