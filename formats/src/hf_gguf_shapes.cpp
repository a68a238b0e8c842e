// Checking an imported llama-family model's tensor set against its hyper-parameters.
#include "hf_gguf_shapes.hpp"

#include <map>
#include <string>

#include "kiln/formats/error.hpp"

namespace kiln::detail {
namespace {

std::string shape_text(const std::vector<uint64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

}  // namespace

void check_llama_tensors(const std::filesystem::path& path, const llama_config& c,
                         const std::vector<source_tensor>& tensors) {
    struct expectation {
        std::vector<uint64_t> shape;
        bool required;
    };
    std::map<std::string, expectation> expected{
        {"token_embd", {{c.vocab_size, c.dim}, true}},
        {"output_norm", {{c.dim}, true}},
        {"output", {{c.vocab_size, c.dim}, false}},
        {"rope_freqs", {{c.head_dim / 2}, false}},
    };
    for (uint64_t layer = 0; layer < c.n_layers; ++layer) {
        const std::string b = "blk." + std::to_string(layer) + ".";
        expected[b + "attn_norm"] = {{c.dim}, true};
        expected[b + "attn_q"] = {{c.q_dim(), c.dim}, true};
        expected[b + "attn_k"] = {{c.kv_dim(), c.dim}, true};
        expected[b + "attn_v"] = {{c.kv_dim(), c.dim}, true};
        expected[b + "attn_output"] = {{c.dim, c.q_dim()}, true};
        expected[b + "ffn_norm"] = {{c.dim}, true};
        expected[b + "ffn_gate"] = {{c.hidden_dim, c.dim}, true};
        expected[b + "ffn_up"] = {{c.hidden_dim, c.dim}, true};
        expected[b + "ffn_down"] = {{c.dim, c.hidden_dim}, true};
        expected[b + "attn_q_bias"] = {{c.q_dim()}, false};
        expected[b + "attn_k_bias"] = {{c.kv_dim()}, false};
        expected[b + "attn_v_bias"] = {{c.kv_dim()}, false};
    }
    std::map<std::string, int> seen;
    for (const auto& t : tensors) {
        auto it = expected.find(t.name);
        if (it == expected.end()) throw file_error(path, "unexpected tensor '" + t.name + "' for a llama model");
        if (++seen[t.name] > 1) throw file_error(path, "tensor '" + t.name + "' appears twice");
        if (t.shape != it->second.shape)
            throw file_error(path, "tensor '" + t.name + "' has shape " + shape_text(t.shape) + ", expected " +
                                       shape_text(it->second.shape));
    }
    for (const auto& [name, e] : expected)
        if (e.required && !seen.count(name)) throw file_error(path, "tensor '" + name + "' is missing");
}

}  // namespace kiln::detail
