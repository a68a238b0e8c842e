// The fast llama forward pass (see fast_llama.hpp); reference_llama.cpp is the same math, plain.
#include "kiln/runtime/fast_llama.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kiln/formats/error.hpp"
#include "kiln/quant/quant.hpp"

namespace kiln {
namespace {

// Rows per parallel chunk: a multiple of every interleave a layout may use.
constexpr size_t row_grain = 16;

kernels::rope_style kernel_rope(rope_style style) {
    return style == rope_style::neox ? kernels::rope_style::neox : kernels::rope_style::interleaved;
}

const float* f32_data(const tensor_view* t) {
    if (t->type != tensor_type::f32) throw error("tensor '" + t->name + "' must be f32");
    return reinterpret_cast<const float*>(t->data);
}

}  // namespace

fast_llama::fast_llama(std::shared_ptr<const model> m, thread_pool& pool, fast_llama_options options)
    : model_(std::move(m)), config_(model_->config()), pool_(pool), kernels_(kernels::active()) {
    const llama_config& c = config_;
    context_ = options.context_length > 0 ? options.context_length : int32_t(c.context_length);
    max_batch_ = size_t(std::max(1, options.max_batch));
    const size_t cache = c.n_layers * size_t(context_) * c.kv_dim();
    key_cache_.assign(cache, 0.0f);
    value_cache_.assign(cache, 0.0f);
    const size_t B = max_batch_;
    x_.resize(B * c.dim);
    xb_.resize(B * std::max(c.dim, c.q_dim()));
    q_.resize(B * c.q_dim());
    k_.resize(B * c.kv_dim());
    v_.resize(B * c.kv_dim());
    att_out_.resize(B * c.q_dim());
    gate_.resize(B * c.hidden_dim);
    up_.resize(B * c.hidden_dim);
    scores_.resize(size_t(pool_.size()) * size_t(context_));
    rope_cos_.resize(B * c.head_dim / 2);
    rope_sin_.resize(B * c.head_dim / 2);
    const size_t widest = std::max({c.dim, c.q_dim(), c.hidden_dim});
    input_q_.resize(B * kernels::quantized_row_bytes((widest + 31) / 32 * 32));
    logits_.resize(c.vocab_size);
    // Norm weights are read directly as f32: check once here rather than per token.
    f32_data(model_->weights().output_norm);
    for (const auto& l : model_->weights().layers) {
        f32_data(l.attn_norm);
        f32_data(l.ffn_norm);
    }
}

std::span<const float> fast_llama::forward(int32_t token, int32_t pos) { return forward_batch({&token, 1}, pos, false); }

std::span<const float> fast_llama::forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits) {
    const llama_config& c = config_;
    if (tokens.empty()) throw error("forward_batch: no tokens");
    if (pos < 0 || int64_t(pos) + int64_t(tokens.size()) > context_)
        throw error("positions " + std::to_string(pos) + ".." + std::to_string(pos + int64_t(tokens.size()) - 1) +
                    " are outside the context of " + std::to_string(context_));
    for (int32_t t : tokens)
        if (t < 0 || uint64_t(t) >= c.vocab_size) throw error("token id " + std::to_string(t) + " is out of range");
    if (all_logits && logits_.size() < tokens.size() * c.vocab_size) logits_.resize(tokens.size() * c.vocab_size);
    pool_.run([&] {
        for (size_t done = 0; done < tokens.size(); done += max_batch_) {
            const size_t n = std::min(max_batch_, tokens.size() - done);
            float* out = all_logits ? logits_.data() + done * c.vocab_size : logits_.data();
            const bool last_step = done + n == tokens.size();
            if (all_logits || last_step) forward_step(tokens.data() + done, n, pos + int32_t(done), all_logits, out);
            else forward_step(tokens.data() + done, n, pos + int32_t(done), false, nullptr);
        }
    });
    return std::span<const float>(logits_.data(), all_logits ? tokens.size() * c.vocab_size : c.vocab_size);
}

void fast_llama::prepare_input(const float* x, size_t cols, size_t n,
                               std::initializer_list<const tensor_view*> consumers) {
    input_f32_ = x;
    input_cols_ = cols;
    const bool wanted = std::any_of(consumers.begin(), consumers.end(), [](const tensor_view* w) {
        return kernels::uses_quantized_activations(w->type);
    });
    if (wanted) kernels_.quantize_activations(x, cols, cols, n, input_q_.data());
}

void fast_llama::matmul(const tensor_view& w, size_t n, float* y) {
    const size_t rows = w.rows(), cols = w.cols();
    if (cols != input_cols_) throw error("matmul: tensor '" + w.name + "' does not match its input width");
    const kernels::matmul_fn fn = kernels::matmul_for(kernels_, w.type);
    const void* x = kernels::uses_quantized_activations(w.type) ? static_cast<const void*>(input_q_.data())
                                                                 : static_cast<const void*>(input_f32_);
    pool_.parallel_rows(rows, row_grain, cols * n, [&](size_t begin, size_t end) {
        fn(w.data, begin, end, cols, x, n, y, rows);
    });
}

void fast_llama::attention(size_t layer, size_t n, int32_t pos) {
    const llama_config& c = config_;
    const size_t hd = c.head_dim, kv_dim = c.kv_dim(), q_dim = c.q_dim(), group = c.n_heads / c.n_kv_heads;
    const float scale = 1.0f / std::sqrt(float(hd));
    const float* keys = key_cache_.data() + layer * size_t(context_) * kv_dim;
    const float* values = value_cache_.data() + layer * size_t(context_) * kv_dim;
    // One work item per (token, head): each item owns its slice of scores_ and of att_out_.
    pool_.parallel_rows(n * c.n_heads, 1, size_t(pos + n) * hd * 2, [&](size_t begin, size_t end) {
        for (size_t item = begin; item < end; ++item) {
            const size_t t = item / c.n_heads, h = item % c.n_heads;
            const size_t length = size_t(pos) + t + 1;  // causal: this token sees positions 0..pos+t
            const float* q = q_.data() + t * q_dim + h * hd;
            const size_t kv_offset = (h / group) * hd;
            // Scores are scratch of the thread running this item: items of one head may run at once.
            float* scores = scores_.data() + size_t(tbb::this_task_arena::current_thread_index()) * size_t(context_);
            for (size_t p = 0; p < length; ++p) scores[p] = kernels_.dot(q, keys + p * kv_dim + kv_offset, hd) * scale;
            kernels_.softmax(scores, length);
            float* out = att_out_.data() + t * q_dim + h * hd;
            std::fill(out, out + hd, 0.0f);
            for (size_t p = 0; p < length; ++p) {
                const float* v = values + p * kv_dim + kv_offset;
                const float weight = scores[p];
                for (size_t i = 0; i < hd; ++i) out[i] += weight * v[i];
            }
        }
    });
}

void fast_llama::forward_step(const int32_t* tokens, size_t n, int32_t pos, bool all_logits, float* logits_out) {
    const llama_config& c = config_;
    const llama_weights& w = model_->weights();
    const size_t dim = c.dim, q_dim = c.q_dim(), kv_dim = c.kv_dim(), hidden = c.hidden_dim, half = c.head_dim / 2;
    const float eps = float(c.norm_eps);

    for (size_t t = 0; t < n; ++t) {
        const tensor_view& e = *w.token_embd;
        quant::dequantize_row(e.type, e.data + size_t(tokens[t]) * row_bytes(e.type, dim), x_.data() + t * dim, dim);
        kernels::rope_angles(size_t(pos) + t, c.head_dim, c.rope_theta, rope_cos_.data() + t * half,
                             rope_sin_.data() + t * half);
    }
    for (size_t l = 0; l < c.n_layers; ++l) {
        const llama_layer_weights& L = w.layers[l];
        for (size_t t = 0; t < n; ++t)
            kernels_.rmsnorm(x_.data() + t * dim, f32_data(L.attn_norm), eps, xb_.data() + t * dim, dim);
        prepare_input(xb_.data(), dim, n, {L.attn_q, L.attn_k, L.attn_v});
        matmul(*L.attn_q, n, q_.data());
        matmul(*L.attn_k, n, k_.data());
        matmul(*L.attn_v, n, v_.data());
        float* layer_keys = key_cache_.data() + l * size_t(context_) * kv_dim;
        float* layer_values = value_cache_.data() + l * size_t(context_) * kv_dim;
        for (size_t t = 0; t < n; ++t) {
            float* q = q_.data() + t * q_dim;
            float* k = k_.data() + t * kv_dim;
            float* v = v_.data() + t * kv_dim;
            if (L.attn_q_bias) kernels_.add(q, f32_data(L.attn_q_bias), q, q_dim);
            if (L.attn_k_bias) kernels_.add(k, f32_data(L.attn_k_bias), k, kv_dim);
            if (L.attn_v_bias) kernels_.add(v, f32_data(L.attn_v_bias), v, kv_dim);
            const float* cos = rope_cos_.data() + t * half;
            const float* sin = rope_sin_.data() + t * half;
            kernels_.rope(q, c.n_heads, c.head_dim, cos, sin, kernel_rope(c.rope));
            kernels_.rope(k, c.n_kv_heads, c.head_dim, cos, sin, kernel_rope(c.rope));
            std::memcpy(layer_keys + (size_t(pos) + t) * kv_dim, k, kv_dim * sizeof(float));
            std::memcpy(layer_values + (size_t(pos) + t) * kv_dim, v, kv_dim * sizeof(float));
        }
        attention(l, n, pos);
        prepare_input(att_out_.data(), q_dim, n, {L.attn_output});
        matmul(*L.attn_output, n, xb_.data());
        kernels_.add(x_.data(), xb_.data(), x_.data(), n * dim);

        for (size_t t = 0; t < n; ++t)
            kernels_.rmsnorm(x_.data() + t * dim, f32_data(L.ffn_norm), eps, xb_.data() + t * dim, dim);
        prepare_input(xb_.data(), dim, n, {L.ffn_gate, L.ffn_up});
        matmul(*L.ffn_gate, n, gate_.data());
        matmul(*L.ffn_up, n, up_.data());
        kernels_.swiglu(gate_.data(), up_.data(), gate_.data(), n * hidden);
        prepare_input(gate_.data(), hidden, n, {L.ffn_down});
        matmul(*L.ffn_down, n, xb_.data());
        kernels_.add(x_.data(), xb_.data(), x_.data(), n * dim);
    }
    if (!logits_out) return;  // a prompt step whose logits nobody reads: skip the classifier
    // Only the rows whose logits are wanted go through the final norm and the classifier.
    const size_t first = all_logits ? 0 : n - 1, count = n - first;
    for (size_t t = first; t < n; ++t)
        kernels_.rmsnorm(x_.data() + t * dim, f32_data(w.output_norm), eps, xb_.data() + (t - first) * dim, dim);
    prepare_input(xb_.data(), dim, count, {w.output});
    matmul(*w.output, count, logits_out);
}

}  // namespace kiln
