// The deepseek2 forward pass on the GPU. Mirrors fast_deepseek2 step for step: RMSNorm, the
// query (direct, or through q_a, its RMSNorm and q_b) and [c_kv, k_rope] projections, the latent
// cache store (RMSNorm of c_kv, YaRN rotation of the shared rope key), W_UK absorbed into each
// head's query, MLA attention in the latent space, W_UV and W_O; then a dense SwiGLU FFN or the
// mixture of experts (router, shared experts, top-k routing on the device, only the chosen
// experts computed, summed in ascending expert order); the classifier. The RoPE angles come
// from deepseek2_rope_angles, the function the CPU passes use, computed once per position.
//
// The latent cache is f16 on the device: the CPU fast path's default (--kv-type f16), so both
// round c_kv and k_rope to the same 11-bit values (the GPU's store rounds to nearest even like
// the CPU's), at half the memory of f32; f16's range is ample for RMSNormed latents and rotated
// keys of a few units.
//
// Weights are copied once from the mmap in their .kiln types; activations never leave the
// device, only the logits come back. A decode step is captured once as a CUDA graph and
// replayed: token and position are read from device memory, and so are the experts the router
// picks (the expert kernels index the expert stack by the routed ids), so one graph serves
// every position and every routing.
#include "cuda_deepseek2.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "kiln/formats/error.hpp"
#include "kiln/runtime/deepseek2_rope.hpp"
#include "launch.hpp"
#include "model_runner.hpp"

namespace kiln::cuda::detail {
namespace {

class cuda_deepseek2 final : public model_runner {
public:
    cuda_deepseek2(std::shared_ptr<const model> m, const cuda_options& options);

private:
    struct layer {
        const float *attn_norm = nullptr, *q_a_norm = nullptr, *kv_a_norm = nullptr, *ffn_norm = nullptr;
        device_weight wq, q_a, q_b, kv_a, wo;  // wq without query compression, else q_a and q_b
        weight_stack k_b, v_b;                 // per head: W_UK^T [lora, nope], W_UV [v_head, lora]
        bool moe = false;
        device_weight gate, up, down;          // dense layers
        device_weight router;                  // MoE layers
        weight_stack gate_exps, up_exps, down_exps;
        bool shared = false;
        device_weight gate_shexp, up_shexp, down_shexp;
    };

    void enqueue(size_t n, bool all_logits) override;
    void attention(const layer& L, size_t l, size_t n);
    // out = down(silu(gate x) * up x) for x = xb_.
    void ffn(const device_weight& gate, const device_weight& up, const device_weight& down, size_t n, float* out);
    void mixture_of_experts(const layer& L, size_t n);

    deepseek2_config config_;
    latent_shape shape_;
    device_weight token_embd_, output_;
    const float* output_norm_ = nullptr;
    std::vector<layer> layers_;

    uint16_t* cache_;  // [layer][position][kv_lora + rope] f16
    float *x_, *xb_, *q_, *q_low_, *kv_, *qa_, *att_, *av_, *out_, *gate_, *up_;
    float *router_logits_ = nullptr, *expert_weights_ = nullptr, *ex_gate_ = nullptr, *ex_up_ = nullptr,
          *ex_out_ = nullptr;
    int32_t* expert_ids_ = nullptr;
};

cuda_deepseek2::cuda_deepseek2(std::shared_ptr<const model> m, const cuda_options& options)
    : model_runner(std::move(m)), config_(model_->deepseek2()) {
    if (!model_->is_deepseek2()) throw error("cuda_deepseek2 needs a deepseek2 model");
    open_device(options.device);
    const deepseek2_config& c = config_;
    if (c.kv_lora_rank == 0 || c.kv_lora_rank > max_latent_lora)
        throw error("kv_lora_rank " + std::to_string(c.kv_lora_rank) +
                    " is not supported by the CUDA latent attention kernel (1 to " + std::to_string(max_latent_lora) +
                    ")");
    if (c.qk_rope_head_dim % 2) throw error("qk_rope_head_dim must be even");
    if (c.n_experts > 0 && (c.n_experts > max_experts || c.n_experts_used == 0 || c.n_experts_used > c.n_experts))
        throw error("the CUDA router takes 1 <= top_k <= n_experts <= " + std::to_string(max_experts) + " (top " +
                    std::to_string(c.n_experts_used) + " of " + std::to_string(c.n_experts) + ")");
    configure(options, c.context_length, c.vocab_size);
    if (context_ <= 0) throw error("the context must hold at least one position");
    shape_ = {c.n_heads, c.kv_lora_rank, c.qk_rope_head_dim, deepseek2_softmax_scale(c)};
    if (latent_attention_shared_bytes(shape_) > size_t(228) * 1024)
        throw error("kv_lora_rank + qk_rope_head_dim is too wide for the CUDA latent attention kernel");
    prepare_latent_attention(shape_);

    const llama_weights& w = model_->weights();
    token_embd_ = upload_matrix(*w.token_embd);
    output_ = upload_matrix(*w.output);
    output_norm_ = upload_f32(w.output_norm);
    const auto& model_layers = model_->deepseek2_layers().layers;
    for (size_t l = 0; l < model_layers.size(); ++l) {
        const deepseek2_layer_weights& lw = model_layers[l];
        layer L;
        L.attn_norm = upload_f32(lw.attn_norm);
        if (c.q_lora_rank == 0) {
            L.wq = upload_matrix(*lw.attn_q);
        } else {
            L.q_a = upload_matrix(*lw.attn_q_a);
            L.q_a_norm = upload_f32(lw.attn_q_a_norm);
            L.q_b = upload_matrix(*lw.attn_q_b);
        }
        L.kv_a = upload_matrix(*lw.attn_kv_a_mqa);
        L.kv_a_norm = upload_f32(lw.attn_kv_a_norm);
        L.k_b = upload_stack(*lw.attn_k_b);
        L.v_b = upload_stack(*lw.attn_v_b);
        L.wo = upload_matrix(*lw.attn_output);
        L.ffn_norm = upload_f32(lw.ffn_norm);
        L.moe = c.is_moe_layer(l);
        if (L.moe) {
            L.router = upload_matrix(*lw.ffn_gate_inp);
            L.gate_exps = upload_stack(*lw.ffn_gate_exps);
            L.up_exps = upload_stack(*lw.ffn_up_exps);
            L.down_exps = upload_stack(*lw.ffn_down_exps);
            L.shared = lw.ffn_gate_shexp != nullptr;
            if (L.shared) {
                L.gate_shexp = upload_matrix(*lw.ffn_gate_shexp);
                L.up_shexp = upload_matrix(*lw.ffn_up_shexp);
                L.down_shexp = upload_matrix(*lw.ffn_down_shexp);
            }
        } else {
            L.gate = upload_matrix(*lw.ffn_gate);
            L.up = upload_matrix(*lw.ffn_up);
            L.down = upload_matrix(*lw.ffn_down);
        }
        layers_.push_back(L);
    }

    const size_t H = c.n_heads, W = c.latent_dim(), lora = c.kv_lora_rank;
    cache_ = cache(c.n_layers * size_t(context_) * W * sizeof(uint16_t), "the latent cache").get<uint16_t>();

    // The angle table for every position, by the function the CPU passes use: [position][rope / 2],
    // YaRN mscale included.
    const size_t half = c.qk_rope_head_dim / 2;
    std::vector<float> cos(std::max<size_t>(size_t(context_) * half, 1)), sin(cos.size());
    for (size_t p = 0; p < size_t(context_) && half; ++p)
        deepseek2_rope_angles(c, p, cos.data() + p * half, sin.data() + p * half);
    upload_rope(cos, sin);

    const size_t b = max_batch_, k = c.n_experts_used, eh = c.expert_hidden_dim;
    const size_t ffn_width = std::max({c.hidden_dim, c.shared_hidden_dim(), size_t(1)});
    x_ = floats(b * c.dim, "activations");
    xb_ = floats(b * c.dim, "activations");
    q_ = floats(b * H * c.qk_head_dim(), "activations");
    q_low_ = floats(b * std::max<size_t>(c.q_lora_rank, 1), "activations");
    kv_ = floats(b * W, "activations");
    qa_ = floats(b * H * W, "activations");
    att_ = floats(b * H * lora, "activations");
    av_ = floats(b * H * c.v_head_dim, "activations");
    out_ = floats(b * c.dim, "activations");
    gate_ = floats(b * ffn_width, "activations");
    up_ = floats(b * ffn_width, "activations");
    if (c.n_experts > 0) {
        router_logits_ = floats(b * c.n_experts, "router logits");
        expert_weights_ = floats(b * k, "expert weights");
        expert_ids_ = scratch(b * k * sizeof(int32_t), "expert ids").get<int32_t>();
        ex_gate_ = floats(b * k * eh, "expert activations");
        ex_up_ = floats(b * k * eh, "expert activations");
        ex_out_ = floats(b * k * c.dim, "expert activations");
    }
    finish_setup(latent_scratch_floats(shape_, splits_));
}

void cuda_deepseek2::attention(const layer& L, size_t l, size_t n) {
    const deepseek2_config& c = config_;
    const size_t H = c.n_heads, qk = c.qk_head_dim(), nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
    const size_t W = c.latent_dim(), lora = c.kv_lora_rank, vd = c.v_head_dim;
    const float eps = float(c.norm_eps);
    const float *cos = rope_cos_.get<float>(), *sin = rope_sin_.get<float>();

    // Projections of the normalised input: the query (direct or through q_a) and [c_kv, k_pe].
    if (c.q_lora_rank == 0) {
        project(L.wq, xb_, n, q_);
        project(L.kv_a, xb_, n, kv_);
    } else {
        project(L.q_a, xb_, n, q_low_);
        project(L.kv_a, xb_, n, kv_);
        rmsnorm(q_low_, L.q_a_norm, q_low_, n, c.q_lora_rank, eps, stream_);
        project(L.q_b, q_low_, n, q_);
    }
    // Cache [RMSNorm(c_kv), rotated k_pe]; rotate each head's q_pe into the absorbed query's tail.
    uint16_t* cache = cache_ + l * size_t(context_) * W;
    store_latent(kv_, n, lora, rope, L.kv_a_norm, eps, cos, sin, d_pos_, cache, stream_);
    rope_query_tail(q_, n, H, nope, rope, lora, cos, sin, d_pos_, qa_, stream_);
    // Absorb W_UK: item (t, h) reads q_nope of head h of token t, writes qa's first lora slots.
    batched_matvec(L.k_b, nullptr, {n * H, H, H * qk, qk, H * W, W}, q_, qa_, stream_);
    latent_attention(qa_, n, shape_, cache, d_pos_, n == 1 ? splits_ : 1, att_scratch_, att_, stream_);
    // W_UV on each head's latent output, then W_O and the residual.
    batched_matvec(L.v_b, nullptr, {n * H, H, H * lora, lora, H * vd, vd}, att_, av_, stream_);
    project(L.wo, av_, n, out_);
    add(x_, out_, n * c.dim, stream_);
}

void cuda_deepseek2::ffn(const device_weight& gate, const device_weight& up, const device_weight& down, size_t n,
                         float* out) {
    project(gate, xb_, n, gate_);
    project(up, xb_, n, up_);
    swiglu(gate_, up_, n * gate.rows, stream_);
    project(down, gate_, n, out);
}

void cuda_deepseek2::mixture_of_experts(const layer& L, size_t n) {
    const deepseek2_config& c = config_;
    const size_t dim = c.dim, k = c.n_experts_used, eh = c.expert_hidden_dim;
    // Router (f32) and shared experts read the normalised input; the shared output goes into x
    // first, as fast_deepseek2.
    project(L.router, xb_, n, router_logits_);
    if (L.shared) {
        ffn(L.gate_shexp, L.up_shexp, L.down_shexp, n, out_);
        add(x_, out_, n * dim, stream_);
    }
    route_experts(router_logits_, n, c.n_experts, k, c.norm_topk_prob, float(c.routed_scaling_factor), expert_ids_,
                  expert_weights_, stream_);
    // Item t * k + j is token t's j-th chosen expert: its weights are picked on the device, and
    // the unchosen experts are never read. Each item reads its expert's matrix on its own; a
    // long prefill would do better grouping tokens by expert into GEMMs (the CPU's order), which
    // needs the grouping on the device too: left for when a GPU can measure it.
    const size_t pairs = n * k;
    const batch_layout in{pairs, k, dim, 0, k * eh, eh};
    batched_matvec(L.gate_exps, expert_ids_, in, xb_, ex_gate_, stream_);
    batched_matvec(L.up_exps, expert_ids_, in, xb_, ex_up_, stream_);
    swiglu(ex_gate_, ex_up_, pairs * eh, stream_);
    batched_matvec(L.down_exps, expert_ids_, {pairs, k, k * eh, eh, k * dim, dim}, ex_gate_, ex_out_, stream_);
    moe_combine(x_, ex_out_, expert_ids_, expert_weights_, n, k, dim, stream_);
}

void cuda_deepseek2::enqueue(size_t n, bool all_logits) {
    const deepseek2_config& c = config_;
    const size_t dim = c.dim;
    const float eps = float(c.norm_eps);
    embed(token_embd_, d_tokens_, n, x_, stream_);
    for (size_t l = 0; l < layers_.size(); ++l) {
        const layer& L = layers_[l];
        rmsnorm(x_, L.attn_norm, xb_, n, dim, eps, stream_);
        attention(L, l, n);
        rmsnorm(x_, L.ffn_norm, xb_, n, dim, eps, stream_);
        if (L.moe) {
            mixture_of_experts(L, n);
        } else {
            ffn(L.gate, L.up, L.down, n, out_);
            add(x_, out_, n * dim, stream_);
        }
    }
    const size_t rows = all_logits ? n : 1;
    const float* last = x_ + (n - rows) * dim;
    rmsnorm(last, output_norm_, xb_, rows, dim, eps, stream_);
    project(output_, xb_, rows, logits_);
}

}  // namespace

std::unique_ptr<cuda_model> make_cuda_deepseek2(std::shared_ptr<const model> m, const cuda_options& options) {
    return std::make_unique<cuda_deepseek2>(std::move(m), options);
}

}  // namespace kiln::cuda::detail
