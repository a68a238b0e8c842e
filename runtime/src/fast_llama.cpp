// The fast llama forward pass (see fast_llama.hpp); reference_llama.cpp is the same math, plain.
#include "kiln/runtime/fast_llama.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kiln/formats/error.hpp"
#include "kiln/quant/quant.hpp"
#include "kiln/runtime/rope.hpp"
#include "fast_common.hpp"

namespace kiln {
namespace {

using namespace fast;

kernels::rope_style kernel_rope(rope_style style) {
    return style == rope_style::neox ? kernels::rope_style::neox : kernels::rope_style::interleaved;
}

const float* f32_data(const tensor_view* t) {
    if (t->type != tensor_type::f32) throw error("tensor '" + t->name + "' must be f32");
    return reinterpret_cast<const float*>(t->data);
}

}  // namespace

namespace {
int32_t chosen_context(const llama_config& c, const fast_llama_options& o) {
    return o.context_length > 0 ? o.context_length : int32_t(c.context_length);
}
}  // namespace

fast_llama::fast_llama(std::shared_ptr<const model> m, thread_pool& pool, fast_llama_options options)
    : model_(std::move(m)),
      config_(model_->config()),
      pool_(pool),
      kernels_(kernels::active()),
      context_(chosen_context(config_, options)),
      // A step never holds more tokens than the context.
      max_batch_(size_t(std::clamp(options.max_batch, 1, context_))),
      cache_(config_.n_layers, config_.n_kv_heads, config_.head_dim, size_t(context_), options.kv_type) {
    const llama_config& c = config_;
    const size_t B = max_batch_;
    x_.resize(B * c.dim);
    xb_.resize(B * std::max(c.dim, c.q_dim()));
    q_.resize(B * c.q_dim());
    k_.resize(B * c.kv_dim());
    v_.resize(B * c.kv_dim());
    att_out_.resize(B * c.q_dim());
    gate_.resize(B * c.hidden_dim);
    up_.resize(B * c.hidden_dim);
    att_scratch_.resize(size_t(pool_.size()) * kernels::attention_scratch_floats(c.head_dim));
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
    check_batch(tokens, pos, context_, config_.vocab_size);
    return run_steps(pool_, tokens, pos, max_batch_, config_.vocab_size, all_logits, logits_,
                     [&](const int32_t* t, size_t n, int32_t p, bool all, float* out) { forward_step(t, n, p, all, out); });
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
    const size_t x_stride = kernels::uses_quantized_activations(w.type) ? kernels::quantized_row_bytes(cols)
                                                                         : cols * sizeof(float);
    parallel_matmul(pool_, fn, w.data, rows, cols, static_cast<const std::byte*>(x), x_stride, n, y, rows);
}

void fast_llama::attention(size_t layer, size_t n, int32_t pos) {
    const llama_config& c = config_;
    const size_t hd = c.head_dim, q_dim = c.q_dim(), group = c.n_heads / c.n_kv_heads;
    const size_t length = size_t(pos) + n;
    // Decode over a long context: split each head's keys so that every thread has work even
    // with one KV head. The split depends on the length only, never on the thread count, so
    // -t 1 and -t 2 compute the same sums in the same order.
    if (n == 1 && length >= 2 * min_split_keys)
        return attention_split(layer, pos, std::min(max_split_chunks, length / min_split_keys));
    const size_t token_block = std::max<size_t>(1, attention_rows / group);
    const size_t blocks = (n + token_block - 1) / token_block;
    const size_t scratch = kernels::attention_scratch_floats(hd);
    // Work items: (KV head, block of tokens); each writes its own rows of att_out_.
    pool_.parallel_rows(c.n_kv_heads * blocks, 1, length * hd * group * token_block, [&](size_t begin, size_t end) {
        float* thread_scratch = att_scratch_.data() + size_t(tbb::this_task_arena::current_thread_index()) * scratch;
        for (size_t item = begin; item < end; ++item) {
            const size_t h = item / blocks, b = item % blocks, t0 = b * token_block;
            kernels::attention_args a{};
            a.q = q_.data() + t0 * q_dim + h * group * hd;
            a.q_stride = q_dim;
            a.n_tokens = std::min(token_block, n - t0);
            a.group = group;
            a.head_dim = hd;
            a.type = cache_.type();
            a.keys = cache_.keys(layer, h);
            a.values = cache_.values(layer, h);
            a.key_begin = 0;
            a.key_end = length;
            a.first_pos = size_t(pos) + t0;
            a.scale = 1.0f / std::sqrt(float(hd));
            a.normalize = true;
            a.out = att_out_.data() + t0 * q_dim + h * group * hd;
            a.out_stride = q_dim;
            a.scratch = thread_scratch;
            kernels_.attention(a);
        }
    });
}

void fast_llama::attention_split(size_t layer, int32_t pos, size_t chunks) {
    const llama_config& c = config_;
    const size_t hd = c.head_dim, group = c.n_heads / c.n_kv_heads, length = size_t(pos) + 1;
    const size_t tiles = (length + kernels::kv_tile - 1) / kernels::kv_tile;
    const size_t chunk_keys = (tiles + chunks - 1) / chunks * kernels::kv_tile;
    chunks = (length + chunk_keys - 1) / chunk_keys;
    const size_t items = c.n_kv_heads * chunks, scratch = kernels::attention_scratch_floats(hd);
    part_out_.resize(items * group * hd);
    part_max_.resize(items * group);
    part_sum_.resize(items * group);
    pool_.parallel_rows(items, 1, chunk_keys * hd * group, [&](size_t begin, size_t end) {
        float* thread_scratch = att_scratch_.data() + size_t(tbb::this_task_arena::current_thread_index()) * scratch;
        for (size_t item = begin; item < end; ++item) {
            const size_t h = item / chunks, k = item % chunks;
            kernels::attention_args a{};
            a.q = q_.data() + h * group * hd;
            a.q_stride = c.q_dim();
            a.n_tokens = 1;
            a.group = group;
            a.head_dim = hd;
            a.type = cache_.type();
            a.keys = cache_.keys(layer, h);
            a.values = cache_.values(layer, h);
            a.key_begin = k * chunk_keys;
            a.key_end = std::min(length, (k + 1) * chunk_keys);
            a.first_pos = size_t(pos);
            a.scale = 1.0f / std::sqrt(float(hd));
            a.normalize = false;
            a.out = part_out_.data() + item * group * hd;
            a.out_stride = group * hd;
            a.row_max = part_max_.data() + item * group;
            a.row_sum = part_sum_.data() + item * group;
            a.scratch = thread_scratch;
            kernels_.attention(a);
        }
    });
    // Merge the chunks of each head in key order (a fixed order: results do not depend on threads).
    for (size_t h = 0; h < c.n_kv_heads; ++h)
        for (size_t g = 0; g < group; ++g) {
            const size_t first = h * chunks;
            float m = part_max_[first * group + g], l = part_sum_[first * group + g];
            float* out = att_out_.data() + (h * group + g) * hd;
            std::copy_n(part_out_.data() + (first * group + g) * hd, hd, out);
            for (size_t k = 1; k < chunks; ++k) {
                const size_t i = (first + k) * group + g;
                kernels::attention_merge(m, l, out, part_max_[i], part_sum_[i], part_out_.data() + i * hd, hd);
            }
            kernels::attention_finish(l, out, hd);
        }
}

void fast_llama::forward_step(const int32_t* tokens, size_t n, int32_t pos, bool all_logits, float* logits_out) {
    const llama_config& c = config_;
    const llama_weights& w = model_->weights();
    const size_t dim = c.dim, q_dim = c.q_dim(), kv_dim = c.kv_dim(), hidden = c.hidden_dim, half = c.head_dim / 2;
    const float eps = float(c.norm_eps);

    for (size_t t = 0; t < n; ++t) {
        const tensor_view& e = *w.token_embd;
        quant::dequantize_row(e.type, e.data + size_t(tokens[t]) * row_bytes(e.type, dim), x_.data() + t * dim, dim);
        rope_angles_for(c, size_t(pos) + t, rope_cos_.data() + t * half, rope_sin_.data() + t * half);
    }
    for (size_t l = 0; l < c.n_layers; ++l) {
        const llama_layer_weights& L = w.layers[l];
        for (size_t t = 0; t < n; ++t)
            kernels_.rmsnorm(x_.data() + t * dim, f32_data(L.attn_norm), eps, xb_.data() + t * dim, dim);
        prepare_input(xb_.data(), dim, n, {L.attn_q, L.attn_k, L.attn_v});
        matmul(*L.attn_q, n, q_.data());
        matmul(*L.attn_k, n, k_.data());
        matmul(*L.attn_v, n, v_.data());
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
            cache_.store(l, size_t(pos) + t, k, v);
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
