// Hyper-parameters of a llama-family model, as stored under llama.* in a .kiln file.
#pragma once
#include <cstdint>
#include <string>

#include "kiln/formats/metadata.hpp"

namespace kiln {

enum class rope_style { interleaved, neox };

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

    uint64_t q_dim() const { return n_heads * head_dim; }
    uint64_t kv_dim() const { return n_kv_heads * head_dim; }

    // Throws kiln::error describing the first impossible value (zero dims, heads not dividing, ...).
    void validate() const;
    void to_metadata(metadata& meta) const;  // also sets general.architecture = "llama"
    static llama_config from_metadata(const metadata& meta);
};

}  // namespace kiln
