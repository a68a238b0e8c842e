// Loading a model: architecture, vocabulary, and the shape check of every tensor.
#include "kiln/runtime/model.hpp"

#include "kiln/formats/error.hpp"
#include "kiln/quant/quant.hpp"

namespace kiln {
namespace {

std::string shape_string(const std::vector<uint64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

class tensor_binder {
public:
    explicit tensor_binder(const kiln_file& file) : file_(file) {}

    const tensor_view* require(const std::string& name, std::vector<uint64_t> shape) const {
        const tensor_view* t = file_.find(name);
        if (!t) throw file_error(file_.path(), "tensor '" + name + "' is missing");
        check(*t, shape);
        return t;
    }
    const tensor_view* optional(const std::string& name, std::vector<uint64_t> shape) const {
        const tensor_view* t = file_.find(name);
        if (t) check(*t, shape);
        return t;
    }

private:
    void check(const tensor_view& t, const std::vector<uint64_t>& shape) const {
        if (t.shape != shape)
            throw file_error(file_.path(), "tensor '" + t.name + "' has shape " + shape_string(t.shape) +
                                               ", the model needs " + shape_string(shape));
    }
    const kiln_file& file_;
};

}  // namespace

std::shared_ptr<const model> model::load(const std::filesystem::path& path) {
    std::shared_ptr<model> m(new model(kiln_file::open(path)));
    try {
        m->config_ = llama_config::from_metadata(m->file_.meta());
        m->vocab_ = vocabulary::from_metadata(m->file_.meta());
    } catch (const file_error&) {
        throw;
    } catch (const std::exception& e) {
        throw file_error(path, e.what());
    }
    const llama_config& c = m->config_;
    if (m->vocab_.size() != c.vocab_size)
        throw file_error(path, "vocabulary has " + std::to_string(m->vocab_.size()) + " tokens, the model " +
                                   std::to_string(c.vocab_size));
    tensor_binder bind(m->file_);
    llama_weights& w = m->weights_;
    w.token_embd = bind.require("token_embd", {c.vocab_size, c.dim});
    for (uint64_t l = 0; l < c.n_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        w.layers.push_back({
            bind.require(p + "attn_norm", {c.dim}),
            bind.require(p + "attn_q", {c.q_dim(), c.dim}),
            bind.require(p + "attn_k", {c.kv_dim(), c.dim}),
            bind.require(p + "attn_v", {c.kv_dim(), c.dim}),
            bind.require(p + "attn_output", {c.dim, c.q_dim()}),
            bind.optional(p + "attn_q_bias", {c.q_dim()}),
            bind.optional(p + "attn_k_bias", {c.kv_dim()}),
            bind.optional(p + "attn_v_bias", {c.kv_dim()}),
            bind.require(p + "ffn_norm", {c.dim}),
            bind.require(p + "ffn_gate", {c.hidden_dim, c.dim}),
            bind.require(p + "ffn_up", {c.hidden_dim, c.dim}),
            bind.require(p + "ffn_down", {c.dim, c.hidden_dim}),
        });
    }
    w.output_norm = bind.require("output_norm", {c.dim});
    w.output = bind.optional("output", {c.vocab_size, c.dim});
    if (!w.output) w.output = w.token_embd;
    return m;
}

std::vector<float> tensor_to_f32(const tensor_view& tensor) {
    std::vector<float> values(tensor.n_elements());
    const uint64_t cols = tensor.cols(), stride = row_bytes(tensor.type, cols);
    for (uint64_t r = 0; r < tensor.rows(); ++r)
        quant::dequantize_row(tensor.type, tensor.data + r * stride, values.data() + r * cols, cols);
    return values;
}

}  // namespace kiln
