// Hyper-parameters of a llama-family model, as stored under llama.* in a .kiln file.
#pragma once
#include <cstdint>
#include <string>

#include "kiln/formats/metadata.hpp"

namespace kiln {

enum class rope_style { interleaved, neox };

// How a long-context model stretches RoPE beyond the context it was first trained on
// (keys llama.rope_scaling.*, see SPEC.md).
enum class rope_scaling_type { none, linear, llama3 };

struct llama_rope_scaling {
    rope_scaling_type type = rope_scaling_type::none;
    double factor = 1.0;                   // linear: positions are divided by it; llama3: long wavelengths
    double low_freq_factor = 1.0;          // llama3 only
    double high_freq_factor = 4.0;         // llama3 only
    uint64_t original_context_length = 0;  // llama3 only: original_max_position_embeddings

    bool operator==(const llama_rope_scaling&) const = default;
};

struct llama_config {
    uint64_t dim = 0;
    uint64_t hidden_dim = 0;
    uint64_t n_layers = 0;
    uint64_t n_heads = 0;
    uint64_t n_kv_heads = 0;
    uint64_t head_dim = 0;
    uint64_t vocab_size = 0;
    uint64_t context_length = 0;
    double norm_eps = 1e-5;
    double rope_theta = 10000.0;
    rope_style rope = rope_style::interleaved;
    llama_rope_scaling rope_scaling;

    uint64_t q_dim() const { return n_heads * head_dim; }
    uint64_t kv_dim() const { return n_kv_heads * head_dim; }

    // Throws kiln::error describing the first impossible value (zero dims, heads not dividing, ...).
    void validate() const;
    void to_metadata(metadata& meta) const;  // also sets general.architecture = "llama"
    static llama_config from_metadata(const metadata& meta);
};

}  // namespace kiln
