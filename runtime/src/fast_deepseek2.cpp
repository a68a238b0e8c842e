// The fast deepseek2 forward pass (see fast_deepseek2.hpp): set-up, matmuls, and multi-head
// latent attention with weight absorption; reference_deepseek2.cpp is the textbook math it must
// match. The mixture of experts is in fast_deepseek2_moe.cpp.
#include "kiln/runtime/fast_deepseek2.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kiln/formats/error.hpp"
#include "kiln/quant/quant.hpp"
#include "kiln/runtime/deepseek2_rope.hpp"
#include "fast_common.hpp"

namespace kiln {
namespace {

using namespace fast;

const float* f32_data(const tensor_view* t) { return reinterpret_cast<const float*>(t->data); }

bool quantized(const tensor_view* t) { return t && kernels::uses_quantized_activations(t->type); }

size_t round32(size_t n) { return (n + 31) / 32 * 32; }

// Interleaved pairs (2i, 2i+1) of one rope vector, HF's weight order (SPEC_deepseek2.md).
void rope_one(const kernels::kernel_table& k, float* v, size_t dim, const float* cos, const float* sin) {
    k.rope(v, 1, dim, cos, sin, kernels::rope_style::interleaved);
}

// Serial y[t * ldy + r] = W x_t for rows [0, rows) in GEMM blocks.
void matmul_serial(kernels::matmul_fn fn, const std::byte* w, size_t rows, size_t cols, const std::byte* x,
                   size_t x_stride, size_t n, float* y, size_t ldy) {
    blocked_rows(fn, w, 0, rows, cols, x, x_stride, n, y, ldy);
}

int32_t chosen_context(const deepseek2_config& c, const fast_deepseek2_options& o) {
    return o.context_length > 0 ? o.context_length : int32_t(c.context_length);
}

}  // namespace

fast_deepseek2::matrix fast_deepseek2::whole(const tensor_view& t) {
    return {t.data, t.type, size_t(t.rows()), size_t(t.cols())};
}

fast_deepseek2::matrix fast_deepseek2::slice(const tensor_view& t, size_t index) {
    const size_t rows = size_t(t.shape[t.shape.size() - 2]), cols = size_t(t.cols());
    return {t.data + index * rows * row_bytes(t.type, cols), t.type, rows, cols};
}

fast_deepseek2::fast_deepseek2(std::shared_ptr<const model> m, thread_pool& pool, fast_deepseek2_options options)
    : model_(std::move(m)),
      config_(model_->deepseek2()),
      pool_(pool),
      kernels_(kernels::active()),
      context_(chosen_context(config_, options)),
      max_batch_(size_t(std::clamp(options.max_batch, 1, std::max(context_, 1)))),
      softmax_scale_(deepseek2_softmax_scale(config_)),
      cache_(config_.n_layers, config_.latent_dim(), size_t(std::max(context_, 1)), options.kv_type) {
    if (!model_->is_deepseek2()) throw error("fast_deepseek2 needs a deepseek2 model");
    if (context_ <= 0) throw error("the context must hold at least one position");
    const deepseek2_config& c = config_;
    const size_t B = max_batch_, H = c.n_heads, W = c.latent_dim(), lora = c.kv_lora_rank;
    x_.resize(B * c.dim);
    xn_.resize(B * c.dim);
    q_.resize(B * H * c.qk_head_dim());
    q_a_.resize(B * c.q_lora_rank);
    kv_.resize(B * W);
    qa_.resize(B * H * W);
    att_.resize(B * H * lora);
    av_.resize(B * H * c.v_head_dim);
    out_.resize(B * c.dim);
    const size_t ffn_width = std::max({c.hidden_dim, c.shared_hidden_dim(), size_t(1)});
    gate_.resize(B * ffn_width);
    up_.resize(B * ffn_width);
    const size_t head_cols = std::max(c.qk_nope_head_dim, lora);
    head_in_.resize(H * B * head_cols);
    head_q_.resize(H * B * kernels::quantized_row_bytes(round32(head_cols)));
    att_scratch_.resize(size_t(pool_.size()) * kernels::attention_scratch_floats(W));
    part_out_.resize(max_split_chunks * H * lora);
    part_max_.resize(max_split_chunks * H);
    part_sum_.resize(max_split_chunks * H);
    rope_cos_.resize(B * c.qk_rope_head_dim / 2);
    rope_sin_.resize(B * c.qk_rope_head_dim / 2);
    const size_t k = c.n_experts_used;
    router_logits_.resize(B * c.n_experts);
    router_probs_.resize(c.n_experts);
    expert_ids_.resize(B * k);
    expert_weights_.resize(B * k);
    expert_count_.resize(c.n_experts);
    expert_first_.resize(c.n_experts);
    routed_token_.resize(B * k);
    routed_weight_.resize(B * k);
    ex_x_.resize(c.n_experts ? B * c.dim : 0);
    ex_gate_.resize(B * c.expert_hidden_dim);
    ex_up_.resize(B * c.expert_hidden_dim);
    ex_out_.resize(c.n_experts ? B * c.dim : 0);
    moe_out_.resize(c.n_experts ? B * c.dim : 0);
    const size_t widest = std::max({c.dim, c.q_lora_rank, H * c.v_head_dim, ffn_width, c.expert_hidden_dim});
    input_q_.resize(B * kernels::quantized_row_bytes(round32(widest)));
    logits_.resize(c.vocab_size);
}

std::span<const float> fast_deepseek2::forward(int32_t token, int32_t pos) {
    return forward_batch({&token, 1}, pos, false);
}

std::span<const float> fast_deepseek2::forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits) {
    check_batch(tokens, pos, context_, config_.vocab_size);
    return run_steps(pool_, tokens, pos, max_batch_, config_.vocab_size, all_logits, logits_,
                     [&](const int32_t* t, size_t n, int32_t p, bool all, float* out) { forward_step(t, n, p, all, out); });
}

void fast_deepseek2::prepare_input(const float* x, size_t cols, size_t n, bool quantize) {
    input_f32_ = x;
    input_cols_ = cols;
    if (quantize) kernels_.quantize_activations(x, cols, cols, n, input_q_.data());
}

void fast_deepseek2::matmul(const matrix& w, size_t n, float* y, size_t ldy) {
    if (w.cols != input_cols_) throw error("matmul: a matrix does not match its input width");
    const kernels::matmul_fn fn = kernels::matmul_for(kernels_, w.type);
    const bool q = kernels::uses_quantized_activations(w.type);
    const std::byte* x = q ? input_q_.data() : reinterpret_cast<const std::byte*>(input_f32_);
    const size_t x_stride = q ? kernels::quantized_row_bytes(w.cols) : w.cols * sizeof(float);
    parallel_matmul(pool_, fn, w.data, w.rows, w.cols, x, x_stride, n, y, ldy);
}

void fast_deepseek2::head_matmul(const tensor_view& w, size_t n, float* y, size_t head_stride, size_t ldy) {
    const size_t heads = size_t(w.shape[0]);
    const kernels::matmul_fn fn = kernels::matmul_for(kernels_, w.type);
    const bool q = kernels::uses_quantized_activations(w.type);
    pool_.parallel_rows(heads, 1, size_t(w.n_elements() / heads) * n, [&](size_t begin, size_t end) {
        for (size_t h = begin; h < end; ++h) {
            const matrix m = slice(w, h);
            const float* x = head_in_.data() + h * n * m.cols;
            const std::byte* input = reinterpret_cast<const std::byte*>(x);
            size_t stride = m.cols * sizeof(float);
            if (q) {
                stride = kernels::quantized_row_bytes(m.cols);
                std::byte* dst = head_q_.data() + h * n * stride;
                kernels_.quantize_activations(x, m.cols, m.cols, n, dst);
                input = dst;
            }
            matmul_serial(fn, m.data, m.rows, m.cols, input, stride, n, y + h * head_stride, ldy);
        }
    });
}

void fast_deepseek2::attention(size_t layer, size_t n, int32_t pos) {
    const deepseek2_config& c = config_;
    const deepseek2_layer_weights& L = model_->deepseek2_layers().layers[layer];
    const size_t H = c.n_heads, qk = c.qk_head_dim(), nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
    const size_t W = c.latent_dim(), lora = c.kv_lora_rank, vd = c.v_head_dim, half = rope / 2;
    const float eps = float(c.norm_eps);

    // Projections of the normalised input: the query (direct or through q_a) and [c_kv, k_pe].
    if (c.q_lora_rank == 0) {
        prepare_input(xn_.data(), c.dim, n, quantized(L.attn_q) || quantized(L.attn_kv_a_mqa));
        matmul(whole(*L.attn_q), n, q_.data(), H * qk);
        matmul(whole(*L.attn_kv_a_mqa), n, kv_.data(), W);
    } else {
        prepare_input(xn_.data(), c.dim, n, quantized(L.attn_q_a) || quantized(L.attn_kv_a_mqa));
        matmul(whole(*L.attn_q_a), n, q_a_.data(), c.q_lora_rank);
        matmul(whole(*L.attn_kv_a_mqa), n, kv_.data(), W);
        for (size_t t = 0; t < n; ++t) {
            float* qa = q_a_.data() + t * c.q_lora_rank;
            kernels_.rmsnorm(qa, f32_data(L.attn_q_a_norm), eps, qa, c.q_lora_rank);
        }
        prepare_input(q_a_.data(), c.q_lora_rank, n, quantized(L.attn_q_b));
        matmul(whole(*L.attn_q_b), n, q_.data(), H * qk);
    }
    // Per token: normalise c_kv, rotate the shared rope key, cache [c_kv, k_pe]; rotate each
    // head's q_pe into the absorbed query's tail and gather q_nope by head for W_UK.
    for (size_t t = 0; t < n; ++t) {
        const float* cos = rope_cos_.data() + t * half;
        const float* sin = rope_sin_.data() + t * half;
        float* kv = kv_.data() + t * W;
        kernels_.rmsnorm(kv, f32_data(L.attn_kv_a_norm), eps, kv, lora);
        rope_one(kernels_, kv + lora, rope, cos, sin);
        cache_.store(layer, size_t(pos) + t, kv);
        for (size_t h = 0; h < H; ++h) {
            float* q = q_.data() + (t * H + h) * qk;
            rope_one(kernels_, q + nope, rope, cos, sin);
            std::memcpy(qa_.data() + (t * H + h) * W + lora, q + nope, rope * sizeof(float));
            std::memcpy(head_in_.data() + (h * n + t) * nope, q, nope * sizeof(float));
        }
    }
    // Absorb W_UK: q_latent_h = W_UK_h^T q_nope_h, written into each head's first kv_lora slots.
    head_matmul(*L.attn_k_b, n, qa_.data(), W, H * W);
    latent_attention(layer, n, pos);
    // Apply W_UV to each head's latent output, then W_O.
    for (size_t t = 0; t < n; ++t)
        for (size_t h = 0; h < H; ++h)
            std::memcpy(head_in_.data() + (h * n + t) * lora, att_.data() + (t * H + h) * lora, lora * sizeof(float));
    head_matmul(*L.attn_v_b, n, av_.data(), vd, H * vd);
    prepare_input(av_.data(), H * vd, n, quantized(L.attn_output));
    matmul(whole(*L.attn_output), n, out_.data(), c.dim);
    kernels_.add(x_.data(), out_.data(), x_.data(), n * c.dim);
}

void fast_deepseek2::latent_attention(size_t layer, size_t n, int32_t pos) {
    const deepseek2_config& c = config_;
    const size_t H = c.n_heads, W = c.latent_dim(), lora = c.kv_lora_rank, length = size_t(pos) + n;
    // Decode over a long context: split the keys so every thread has work (one shared latent
    // head). The split depends on the length only, so -t 1 and -t 2 sum in the same order.
    if (n == 1 && length >= 2 * min_split_keys)
        return latent_attention_split(layer, pos, std::min(max_split_chunks, length / min_split_keys));
    const size_t token_block = std::max<size_t>(1, attention_rows / H);
    const size_t blocks = (n + token_block - 1) / token_block;
    const size_t scratch = kernels::attention_scratch_floats(W);
    pool_.parallel_rows(blocks, 1, length * W * H * token_block, [&](size_t begin, size_t end) {
        float* thread_scratch = att_scratch_.data() + size_t(tbb::this_task_arena::current_thread_index()) * scratch;
        for (size_t b = begin; b < end; ++b) {
            const size_t t0 = b * token_block;
            kernels::attention_args a{};
            a.q = qa_.data() + t0 * H * W;
            a.q_stride = H * W;
            a.n_tokens = std::min(token_block, n - t0);
            a.group = H;  // every query head shares the one latent "KV head" (MQA-like)
            a.head_dim = W;
            a.type = cache_.type();
            a.keys = cache_.keys(layer);
            a.values = nullptr;  // latent mode: values are the first kv_lora elements of each key
            a.value_dim = lora;
            a.key_begin = 0;
            a.key_end = length;
            a.first_pos = size_t(pos) + t0;
            a.scale = softmax_scale_;
            a.normalize = true;
            a.out = att_.data() + t0 * H * lora;
            a.out_stride = H * lora;
            a.scratch = thread_scratch;
            kernels_.attention(a);
        }
    });
}

void fast_deepseek2::latent_attention_split(size_t layer, int32_t pos, size_t chunks) {
    const deepseek2_config& c = config_;
    const size_t H = c.n_heads, W = c.latent_dim(), lora = c.kv_lora_rank, length = size_t(pos) + 1;
    const size_t tiles = (length + kernels::kv_tile - 1) / kernels::kv_tile;
    const size_t chunk_keys = (tiles + chunks - 1) / chunks * kernels::kv_tile;
    chunks = (length + chunk_keys - 1) / chunk_keys;
    const size_t scratch = kernels::attention_scratch_floats(W);
    pool_.parallel_rows(chunks, 1, chunk_keys * W * H, [&](size_t begin, size_t end) {
        float* thread_scratch = att_scratch_.data() + size_t(tbb::this_task_arena::current_thread_index()) * scratch;
        for (size_t k = begin; k < end; ++k) {
            kernels::attention_args a{};
            a.q = qa_.data();
            a.q_stride = H * W;
            a.n_tokens = 1;
            a.group = H;
            a.head_dim = W;
            a.type = cache_.type();
            a.keys = cache_.keys(layer);
            a.values = nullptr;
            a.value_dim = lora;
            a.key_begin = k * chunk_keys;
            a.key_end = std::min(length, (k + 1) * chunk_keys);
            a.first_pos = size_t(pos);
            a.scale = softmax_scale_;
            a.normalize = false;
            a.out = part_out_.data() + k * H * lora;
            a.out_stride = H * lora;
            a.row_max = part_max_.data() + k * H;
            a.row_sum = part_sum_.data() + k * H;
            a.scratch = thread_scratch;
            kernels_.attention(a);
        }
    });
    // Merge the chunks of each head in key order (fixed: results do not depend on threads).
    for (size_t h = 0; h < H; ++h) {
        float m = part_max_[h], l = part_sum_[h];
        float* out = att_.data() + h * lora;
        std::copy_n(part_out_.data() + h * lora, lora, out);
        for (size_t k = 1; k < chunks; ++k) {
            const size_t i = k * H + h;
            kernels::attention_merge(m, l, out, part_max_[i], part_sum_[i], part_out_.data() + i * lora, lora);
        }
        kernels::attention_finish(l, out, lora);
    }
}

void fast_deepseek2::forward_step(const int32_t* tokens, size_t n, int32_t pos, bool all_logits, float* logits_out) {
    const deepseek2_config& c = config_;
    const llama_weights& w = model_->weights();
    const size_t dim = c.dim, half = c.qk_rope_head_dim / 2;
    const float eps = float(c.norm_eps);
    for (size_t t = 0; t < n; ++t) {
        const tensor_view& e = *w.token_embd;
        quant::dequantize_row(e.type, e.data + size_t(tokens[t]) * row_bytes(e.type, dim), x_.data() + t * dim, dim);
        deepseek2_rope_angles(c, size_t(pos) + t, rope_cos_.data() + t * half, rope_sin_.data() + t * half);
    }
    for (size_t l = 0; l < c.n_layers; ++l) {
        const deepseek2_layer_weights& L = model_->deepseek2_layers().layers[l];
        for (size_t t = 0; t < n; ++t)
            kernels_.rmsnorm(x_.data() + t * dim, f32_data(L.attn_norm), eps, xn_.data() + t * dim, dim);
        attention(l, n, pos);
        for (size_t t = 0; t < n; ++t)
            kernels_.rmsnorm(x_.data() + t * dim, f32_data(L.ffn_norm), eps, xn_.data() + t * dim, dim);
        if (c.is_moe_layer(l)) {
            mixture_of_experts(l, n);
        } else {
            prepare_input(xn_.data(), dim, n, quantized(L.ffn_gate) || quantized(L.ffn_up));
            ffn(whole(*L.ffn_gate), whole(*L.ffn_up), whole(*L.ffn_down), n, out_.data());
            kernels_.add(x_.data(), out_.data(), x_.data(), n * dim);
        }
    }
    if (!logits_out) return;  // a prompt step whose logits nobody reads: skip the classifier
    const size_t first = all_logits ? 0 : n - 1, count = n - first;
    for (size_t t = first; t < n; ++t)
        kernels_.rmsnorm(x_.data() + t * dim, f32_data(w.output_norm), eps, xn_.data() + (t - first) * dim, dim);
    prepare_input(xn_.data(), dim, count, quantized(w.output));
    matmul(whole(*w.output), count, logits_out, c.vocab_size);
}

}  // namespace kiln
