// Loading a model: architecture, vocabulary, and the shape check of every tensor.
#include "kiln/runtime/model.hpp"

#include "kiln/formats/error.hpp"
#include "kiln/quant/quant.hpp"

namespace kiln {
namespace {

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

// A llama_config carrying the shape every architecture shares, for code that runs any model.
llama_config summary_of(const deepseek2_config& d) {
    llama_config c;
    c.dim = d.dim;
    c.hidden_dim = d.hidden_dim;
    c.n_layers = d.n_layers;
    c.n_heads = d.n_heads;
    c.n_kv_heads = d.n_heads;
    c.head_dim = d.v_head_dim;
    c.vocab_size = d.vocab_size;
    c.context_length = d.context_length;
    c.norm_eps = d.norm_eps;
    c.rope_theta = d.rope_theta;
    return c;
}

}  // namespace

std::shared_ptr<const model> model::load(const std::filesystem::path& path) {
    std::shared_ptr<model> m(new model(kiln_file::open(path)));
    try {
        m->architecture_ = m->file_.meta().get_string_or("general.architecture", "");
        if (m->architecture_ == "deepseek2") {
            m->deepseek2_ = deepseek2_config::from_metadata(m->file_.meta());
            m->config_ = summary_of(m->deepseek2_);
        } else {
            m->config_ = llama_config::from_metadata(m->file_.meta());
        }
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
    if (m->is_deepseek2()) m->bind_deepseek2();
    else m->bind_llama();
    return m;
}

void model::bind_llama() {
    const llama_config& c = config_;
    tensor_binder bind(file_);
    llama_weights& w = weights_;
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
}

void model::bind_deepseek2() {
    const deepseek2_config& c = deepseek2_;
    tensor_binder bind(file_);
    llama_weights& w = weights_;
    w.token_embd = bind.require("token_embd", {c.vocab_size, c.dim});
    w.output_norm = bind.require("output_norm", {c.dim});
    w.output = bind.optional("output", {c.vocab_size, c.dim});
    if (!w.output) w.output = w.token_embd;
    if (w.output_norm->type != tensor_type::f32) throw file_error(file_.path(), "tensor 'output_norm' must be f32");
    const uint64_t h = c.n_heads, q_width = h * c.qk_head_dim();
    for (uint64_t l = 0; l < c.n_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        deepseek2_layer_weights L{};
        L.attn_norm = bind.require(p + "attn_norm", {c.dim});
        if (c.q_lora_rank == 0) {
            L.attn_q = bind.require(p + "attn_q", {q_width, c.dim});
        } else {
            L.attn_q_a = bind.require(p + "attn_q_a", {c.q_lora_rank, c.dim});
            L.attn_q_a_norm = bind.require(p + "attn_q_a_norm", {c.q_lora_rank});
            L.attn_q_b = bind.require(p + "attn_q_b", {q_width, c.q_lora_rank});
        }
        L.attn_kv_a_mqa = bind.require(p + "attn_kv_a_mqa", {c.latent_dim(), c.dim});
        L.attn_kv_a_norm = bind.require(p + "attn_kv_a_norm", {c.kv_lora_rank});
        L.attn_k_b = bind.require(p + "attn_k_b", {h, c.kv_lora_rank, c.qk_nope_head_dim});
        L.attn_v_b = bind.require(p + "attn_v_b", {h, c.v_head_dim, c.kv_lora_rank});
        L.attn_output = bind.require(p + "attn_output", {c.dim, h * c.v_head_dim});
        L.ffn_norm = bind.require(p + "ffn_norm", {c.dim});
        if (!c.is_moe_layer(l)) {
            L.ffn_gate = bind.require(p + "ffn_gate", {c.hidden_dim, c.dim});
            L.ffn_up = bind.require(p + "ffn_up", {c.hidden_dim, c.dim});
            L.ffn_down = bind.require(p + "ffn_down", {c.dim, c.hidden_dim});
        } else {
            L.ffn_gate_inp = bind.require(p + "ffn_gate_inp", {c.n_experts, c.dim});
            if (L.ffn_gate_inp->type != tensor_type::f32)
                throw file_error(file_.path(), "tensor '" + L.ffn_gate_inp->name + "' (the router) must be f32");
            L.ffn_gate_exps = bind.require(p + "ffn_gate_exps", {c.n_experts, c.expert_hidden_dim, c.dim});
            L.ffn_up_exps = bind.require(p + "ffn_up_exps", {c.n_experts, c.expert_hidden_dim, c.dim});
            L.ffn_down_exps = bind.require(p + "ffn_down_exps", {c.n_experts, c.dim, c.expert_hidden_dim});
            if (c.n_shared_experts > 0) {
                L.ffn_gate_shexp = bind.require(p + "ffn_gate_shexp", {c.shared_hidden_dim(), c.dim});
                L.ffn_up_shexp = bind.require(p + "ffn_up_shexp", {c.shared_hidden_dim(), c.dim});
                L.ffn_down_shexp = bind.require(p + "ffn_down_shexp", {c.dim, c.shared_hidden_dim()});
            }
        }
        for (const tensor_view* norm : {L.attn_norm, L.attn_q_a_norm, L.attn_kv_a_norm, L.ffn_norm})
            if (norm && norm->type != tensor_type::f32)
                throw file_error(file_.path(), "tensor '" + norm->name + "' must be f32");
        deepseek2_weights_.layers.push_back(L);
    }
}

std::vector<float> tensor_to_f32(const tensor_view& tensor) {
    std::vector<float> values(tensor.n_elements());
    const uint64_t cols = tensor.cols(), stride = row_bytes(tensor.type, cols);
    for (uint64_t r = 0; r < tensor.rows(); ++r)
        quant::dequantize_row(tensor.type, tensor.data + r * stride, values.data() + r * cols, cols);
    return values;
}

}  // namespace kiln
