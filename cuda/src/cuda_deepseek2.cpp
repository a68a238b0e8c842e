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

#include <cuda_runtime_api.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "device_buffer.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/runtime/deepseek2_rope.hpp"
#include "launch.hpp"

namespace kiln::cuda::detail {
namespace {

class cuda_deepseek2 final : public cuda_model {
public:
    cuda_deepseek2(std::shared_ptr<const model> m, const cuda_options& options);
    ~cuda_deepseek2() override;

    std::span<const float> forward(int32_t token, int32_t pos) override;
    std::span<const float> forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits) override;
    int32_t context_length() const override { return context_; }
    int32_t vocab_size() const override { return int32_t(config_.vocab_size); }

    const device_info& device() const override { return device_; }
    size_t weight_bytes() const override { return weight_bytes_; }
    size_t cache_bytes() const override { return cache_.bytes(); }
    size_t other_bytes() const override { return other_bytes_; }

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

    device_weight upload_matrix(const tensor_view& t);
    weight_stack upload_stack(const tensor_view& t);
    const float* upload_f32(const tensor_view* t);
    device_buffer& scratch(size_t bytes, const char* what);
    float* floats(size_t count, const char* what) { return scratch(count * sizeof(float), what).get<float>(); }

    void project(const device_weight& w, const float* x, size_t n, float* y);
    // Enqueues the forward pass for n tokens already in d_tokens_/d_pos_; the logits of the last
    // token (or all n) land in logits_.
    void enqueue(size_t n, bool all_logits);
    void attention(const layer& L, size_t l, size_t n);
    // out = down(silu(gate x) * up x) for x = xb_.
    void ffn(const device_weight& gate, const device_weight& up, const device_weight& down, size_t n, float* out);
    void mixture_of_experts(const layer& L, size_t n);
    std::span<const float> step(const int32_t* tokens, size_t n, int32_t pos, bool all_logits);

    std::shared_ptr<const model> model_;
    deepseek2_config config_;
    int32_t context_;
    size_t max_batch_;
    size_t splits_;  // decode attention splits
    bool use_graphs_;
    latent_shape shape_;
    device_info device_;
    cudaStream_t stream_ = nullptr;
    cudaGraphExec_t decode_graph_ = nullptr;

    std::vector<device_buffer> weights_;
    std::map<const tensor_view*, device_weight> uploaded_;  // a tied classifier is uploaded once
    size_t weight_bytes_ = 0, other_bytes_ = 0;
    device_weight token_embd_, output_;
    const float* output_norm_ = nullptr;
    std::vector<layer> layers_;

    device_buffer cache_;               // [layer][position][kv_lora + rope] f16
    device_buffer rope_cos_, rope_sin_;  // [position][rope / 2], YaRN mscale included
    std::vector<device_buffer> activations_;
    float *x_, *xb_, *q_, *q_low_, *kv_, *qa_, *att_, *av_, *out_, *gate_, *up_;
    float *router_logits_ = nullptr, *expert_weights_ = nullptr, *ex_gate_ = nullptr, *ex_up_ = nullptr,
          *ex_out_ = nullptr;
    float *logits_, *att_scratch_;
    int32_t *d_tokens_, *d_pos_, *expert_ids_ = nullptr;
    pinned_buffer h_tokens_, h_logits_;
    std::vector<float> gathered_;  // all_logits rows of a prompt longer than max_batch
};

size_t matrix_bytes(const tensor_view& t) { return size_t(t.rows()) * size_t(row_bytes(t.type, t.cols())); }

cuda_deepseek2::cuda_deepseek2(std::shared_ptr<const model> m, const cuda_options& options)
    : model_(std::move(m)), config_(model_->deepseek2()) {
    if (!model_->is_deepseek2()) throw error("cuda_deepseek2 needs a deepseek2 model");
    if (const std::string why = unavailable_reason(options.device); !why.empty()) throw error(why);
    check(cudaSetDevice(options.device), "cudaSetDevice");
    device_ = describe_device(options.device);
    const deepseek2_config& c = config_;
    if (c.kv_lora_rank == 0 || c.kv_lora_rank > max_latent_lora)
        throw error("kv_lora_rank " + std::to_string(c.kv_lora_rank) +
                    " is not supported by the CUDA latent attention kernel (1 to " + std::to_string(max_latent_lora) +
                    ")");
    if (c.qk_rope_head_dim % 2) throw error("qk_rope_head_dim must be even");
    if (c.n_experts > 0 && (c.n_experts > max_experts || c.n_experts_used == 0 || c.n_experts_used > c.n_experts))
        throw error("the CUDA router takes 1 <= top_k <= n_experts <= " + std::to_string(max_experts) + " (top " +
                    std::to_string(c.n_experts_used) + " of " + std::to_string(c.n_experts) + ")");
    if (options.max_batch <= 0) throw error("batch size must be positive");
    context_ = options.context_length > 0 ? options.context_length : int32_t(c.context_length);
    if (context_ <= 0) throw error("the context must hold at least one position");
    max_batch_ = size_t(options.max_batch);
    use_graphs_ = options.graphs;
    splits_ = std::clamp<size_t>(size_t(context_) / 256, 1, 32);  // as cuda_llama
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
    cache_ = device_buffer(c.n_layers * size_t(context_) * W * sizeof(uint16_t), "the latent cache");

    // The angle table for every position, by the function the CPU passes use.
    const size_t half = c.qk_rope_head_dim / 2;
    std::vector<float> cos(std::max<size_t>(size_t(context_) * half, 1)), sin(cos.size());
    for (size_t p = 0; p < size_t(context_) && half; ++p)
        deepseek2_rope_angles(c, p, cos.data() + p * half, sin.data() + p * half);
    rope_cos_ = device_buffer(cos.size() * sizeof(float), "the RoPE table");
    rope_sin_ = device_buffer(sin.size() * sizeof(float), "the RoPE table");
    rope_cos_.upload(cos.data(), cos.size() * sizeof(float));
    rope_sin_.upload(sin.data(), sin.size() * sizeof(float));
    other_bytes_ += rope_cos_.bytes() + rope_sin_.bytes();

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
    logits_ = floats(b * c.vocab_size, "logits");
    att_scratch_ = floats(latent_scratch_floats(shape_, splits_), "attention partials");
    d_tokens_ = scratch(b * sizeof(int32_t), "token ids").get<int32_t>();
    d_pos_ = scratch(sizeof(int32_t), "the position").get<int32_t>();
    h_tokens_ = pinned_buffer((b + 1) * sizeof(int32_t), "token ids");
    h_logits_ = pinned_buffer(b * c.vocab_size * sizeof(float), "logits");
    // As cuda_llama: finish every (pageable) upload before the work stream's first step.
    check(cudaDeviceSynchronize(), "weight upload");
    // Created last: a constructor that throws runs no destructor, and the buffers free themselves.
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
}

cuda_deepseek2::~cuda_deepseek2() {
    if (stream_) cudaStreamSynchronize(stream_);
    if (decode_graph_) cudaGraphExecDestroy(decode_graph_);
    if (stream_) cudaStreamDestroy(stream_);
}

device_buffer& cuda_deepseek2::scratch(size_t bytes, const char* what) {
    activations_.emplace_back(std::max<size_t>(bytes, 1), what);
    other_bytes_ += activations_.back().bytes();
    return activations_.back();
}

device_weight cuda_deepseek2::upload_matrix(const tensor_view& t) {
    if (auto it = uploaded_.find(&t); it != uploaded_.end()) return it->second;
    if (t.shape.size() != 2) throw error("tensor " + t.name + " is not a matrix");
    if (!row_fits(t.type, t.cols())) throw error("tensor " + t.name + ": rows do not fit the block size");
    const size_t bytes = matrix_bytes(t);
    if (bytes > t.size) throw error("tensor " + t.name + " is shorter than its shape");
    device_buffer& buffer = weights_.emplace_back(bytes, t.name.c_str());
    buffer.upload_rows(t.data, uint32_t(t.type), size_t(t.rows()), size_t(t.cols()), size_t(row_bytes(t.type, t.cols())));
    weight_bytes_ += bytes;
    device_weight w{uint32_t(t.type), buffer.get<uint8_t>(), size_t(t.rows()), size_t(t.cols()),
                    size_t(row_bytes(t.type, t.cols()))};
    return uploaded_[&t] = w;
}

weight_stack cuda_deepseek2::upload_stack(const tensor_view& t) {
    if (t.shape.size() != 3) throw error("tensor " + t.name + " is not a stack of matrices");
    if (!row_fits(t.type, t.cols())) throw error("tensor " + t.name + ": rows do not fit the block size");
    const size_t count = size_t(t.shape[0]), rows = size_t(t.shape[1]), cols = size_t(t.shape[2]);
    const size_t row = size_t(row_bytes(t.type, cols)), bytes = count * rows * row;
    if (bytes > t.size) throw error("tensor " + t.name + " is shorter than its shape");
    device_buffer& buffer = weights_.emplace_back(bytes, t.name.c_str());
    buffer.upload_rows(t.data, uint32_t(t.type), count * rows, cols, row);
    weight_bytes_ += bytes;
    return {{uint32_t(t.type), buffer.get<uint8_t>(), rows, cols, row}, count, rows * row};
}

const float* cuda_deepseek2::upload_f32(const tensor_view* t) {
    const std::vector<float> values = tensor_to_f32(*t);
    device_buffer& buffer = weights_.emplace_back(values.size() * sizeof(float), t->name.c_str());
    buffer.upload(values.data(), values.size() * sizeof(float));
    weight_bytes_ += buffer.bytes();
    return buffer.get<float>();
}

void cuda_deepseek2::project(const device_weight& w, const float* x, size_t n, float* y) {
    if (n == 1)
        matvec(w, x, y, stream_);
    else
        gemm(w, x, n, y, stream_);
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
    uint16_t* cache = cache_.get<uint16_t>() + l * size_t(context_) * W;
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

std::span<const float> cuda_deepseek2::step(const int32_t* tokens, size_t n, int32_t pos, bool all_logits) {
    int32_t* host = h_tokens_.get<int32_t>();
    host[0] = pos;
    std::copy(tokens, tokens + n, host + 1);
    check(cudaMemcpyAsync(d_pos_, host, sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "position upload");
    check(cudaMemcpyAsync(d_tokens_, host + 1, n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "token upload");
    if (n == 1 && use_graphs_) {
        if (!decode_graph_) {
            cudaGraph_t graph = nullptr;
            check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "decode graph capture");
            try {
                enqueue(1, false);
            } catch (...) {
                cudaStreamEndCapture(stream_, &graph);
                if (graph) cudaGraphDestroy(graph);
                throw;
            }
            check(cudaStreamEndCapture(stream_, &graph), "decode graph capture");
            const cudaError_t status = cudaGraphInstantiate(&decode_graph_, graph, 0);
            cudaGraphDestroy(graph);
            check(status, "decode graph instantiation");
        }
        check(cudaGraphLaunch(decode_graph_, stream_), "decode graph launch");
    } else {
        enqueue(n, all_logits);
    }
    const size_t count = (all_logits ? n : 1) * config_.vocab_size;
    float* out = h_logits_.get<float>();
    check(cudaMemcpyAsync(out, logits_, count * sizeof(float), cudaMemcpyDeviceToHost, stream_), "logits download");
    check(cudaStreamSynchronize(stream_), "forward pass");
    return {out, count};
}

std::span<const float> cuda_deepseek2::forward(int32_t token, int32_t pos) {
    return forward_batch({&token, 1}, pos, false);
}

std::span<const float> cuda_deepseek2::forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits) {
    if (tokens.empty()) throw error("forward_batch needs at least one token");
    if (pos < 0 || int64_t(pos) + int64_t(tokens.size()) > context_)
        throw error("positions " + std::to_string(pos) + ".." + std::to_string(int64_t(pos) + int64_t(tokens.size()) - 1) +
                    " are outside the context of " + std::to_string(context_));
    for (int32_t t : tokens)
        if (t < 0 || uint64_t(t) >= config_.vocab_size) throw error("token id " + std::to_string(t) + " is out of range");
    if (tokens.size() <= max_batch_) return step(tokens.data(), tokens.size(), pos, all_logits);
    gathered_.clear();
    std::span<const float> last;
    for (size_t done = 0; done < tokens.size(); done += max_batch_) {
        const size_t n = std::min(max_batch_, tokens.size() - done);
        last = step(tokens.data() + done, n, pos + int32_t(done), all_logits);
        if (all_logits) gathered_.insert(gathered_.end(), last.begin(), last.end());
    }
    if (all_logits) return gathered_;
    return last;
}

}  // namespace

std::unique_ptr<cuda_model> make_cuda_deepseek2(std::shared_ptr<const model> m, const cuda_options& options) {
    return std::make_unique<cuda_deepseek2>(std::move(m), options);
}

}  // namespace kiln::cuda::detail
