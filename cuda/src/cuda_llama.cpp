// The llama forward pass on the GPU. Mirrors reference_llama/fast_llama step for step: RMSNorm,
// Q/K/V projections (+ biases), RoPE from the same host-computed angle table, an f16 KV cache,
// causal GQA attention, the output projection, SwiGLU feed-forward, the classifier. Weights are
// copied once from the mmap in their .kiln types; activations never leave the device, only the
// logits come back. A decode step (one token) is captured once as a CUDA graph and replayed: the
// token and position are read from device memory, so one graph serves every position.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "cuda_deepseek2.hpp"
#include "device_buffer.hpp"
#include "kiln/cuda/cuda_backend.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/runtime/rope.hpp"
#include "launch.hpp"

namespace kiln::cuda {
namespace {

using detail::check;
using detail::device_buffer;
using detail::device_weight;
using detail::pinned_buffer;

class cuda_llama final : public cuda_model {
public:
    cuda_llama(std::shared_ptr<const model> m, const cuda_options& options);
    ~cuda_llama() override;

    std::span<const float> forward(int32_t token, int32_t pos) override;
    std::span<const float> forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits) override;
    int32_t context_length() const override { return context_; }
    int32_t vocab_size() const override { return int32_t(config_.vocab_size); }

    const device_info& device() const override { return device_; }
    size_t weight_bytes() const override { return weight_bytes_; }
    size_t cache_bytes() const override { return key_cache_.bytes() + value_cache_.bytes(); }
    size_t other_bytes() const override { return other_bytes_; }

private:
    struct layer {
        device_weight wq, wk, wv, wo, gate, up, down;
        const float *attn_norm, *ffn_norm;
        const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
    };

    device_weight upload_matrix(const tensor_view& t);
    const float* upload_f32(const tensor_view* t);
    device_buffer& scratch(size_t bytes, const char* what);
    // Enqueues the whole forward pass for n tokens already in d_tokens_/d_pos_; the logits of
    // the last token (or all n) land in logits_.
    void enqueue(size_t n, bool all_logits);
    void project(const device_weight& w, const float* x, size_t n, float* y);
    // One step of at most max_batch tokens; returns the host logits.
    std::span<const float> step(const int32_t* tokens, size_t n, int32_t pos, bool all_logits);

    std::shared_ptr<const model> model_;
    llama_config config_;
    int32_t context_;
    size_t max_batch_;
    size_t splits_;  // decode attention splits
    bool use_graphs_;
    device_info device_;
    cudaStream_t stream_ = nullptr;
    cudaGraphExec_t decode_graph_ = nullptr;

    std::vector<device_buffer> weights_;  // every uploaded tensor
    std::map<const tensor_view*, device_weight> uploaded_;  // a tied classifier is uploaded once
    size_t weight_bytes_ = 0, other_bytes_ = 0;
    device_weight token_embd_, output_;
    const float* output_norm_ = nullptr;
    std::vector<layer> layers_;

    device_buffer key_cache_, value_cache_;  // [layer][position][kv_dim] f16
    device_buffer rope_cos_, rope_sin_;      // [position][head_dim / 2]
    std::vector<device_buffer> activations_;
    float *x_, *xb_, *q_, *k_, *v_, *att_, *gate_, *up_, *logits_, *att_scratch_;
    int32_t *d_tokens_, *d_pos_;
    pinned_buffer h_tokens_, h_logits_;
    std::vector<float> gathered_;  // all_logits rows of a prompt longer than max_batch
};

size_t matrix_bytes(const tensor_view& t) { return size_t(t.rows()) * size_t(row_bytes(t.type, t.cols())); }

cuda_llama::cuda_llama(std::shared_ptr<const model> m, const cuda_options& options)
    : model_(std::move(m)), config_(model_->config()) {
    if (model_->is_deepseek2()) throw error("cuda_llama needs a llama-architecture model");
    if (const std::string why = unavailable_reason(options.device); !why.empty()) throw error(why);
    check(cudaSetDevice(options.device), "cudaSetDevice");
    device_ = describe_device(options.device);
    const llama_config& c = config_;
    if (c.head_dim > detail::max_head_dim || c.head_dim % 2)
        throw error("head_dim " + std::to_string(c.head_dim) + " is not supported by the CUDA attention kernel (even, at most " +
                    std::to_string(detail::max_head_dim) + ")");
    if (options.max_batch <= 0) throw error("batch size must be positive");
    context_ = options.context_length > 0 ? options.context_length : int32_t(c.context_length);
    max_batch_ = size_t(options.max_batch);
    use_graphs_ = options.graphs;
    // Enough blocks per head that a long context fills the GPU, few enough that short ones
    // waste little (empty splits exit at once).
    splits_ = std::clamp<size_t>(size_t(context_) / 256, 1, 32);

    const llama_weights& w = model_->weights();
    token_embd_ = upload_matrix(*w.token_embd);
    output_ = upload_matrix(*w.output);
    output_norm_ = upload_f32(w.output_norm);
    for (const llama_layer_weights& lw : w.layers) {
        layer L;
        L.attn_norm = upload_f32(lw.attn_norm);
        L.ffn_norm = upload_f32(lw.ffn_norm);
        L.wq = upload_matrix(*lw.attn_q);
        L.wk = upload_matrix(*lw.attn_k);
        L.wv = upload_matrix(*lw.attn_v);
        L.wo = upload_matrix(*lw.attn_output);
        L.gate = upload_matrix(*lw.ffn_gate);
        L.up = upload_matrix(*lw.ffn_up);
        L.down = upload_matrix(*lw.ffn_down);
        if (lw.attn_q_bias) L.bq = upload_f32(lw.attn_q_bias);
        if (lw.attn_k_bias) L.bk = upload_f32(lw.attn_k_bias);
        if (lw.attn_v_bias) L.bv = upload_f32(lw.attn_v_bias);
        layers_.push_back(L);
    }

    const size_t cache = c.n_layers * size_t(context_) * c.kv_dim() * sizeof(uint16_t);
    key_cache_ = device_buffer(cache, "the key cache");
    value_cache_ = device_buffer(cache, "the value cache");

    // The angle table for every position, computed by the same function the CPU passes use.
    const size_t half = c.head_dim / 2;
    std::vector<float> cos(size_t(context_) * half), sin(size_t(context_) * half);
    for (size_t p = 0; p < size_t(context_); ++p) rope_angles_for(c, p, cos.data() + p * half, sin.data() + p * half);
    rope_cos_ = device_buffer(cos.size() * sizeof(float), "the RoPE table");
    rope_sin_ = device_buffer(sin.size() * sizeof(float), "the RoPE table");
    rope_cos_.upload(cos.data(), cos.size() * sizeof(float));
    rope_sin_.upload(sin.data(), sin.size() * sizeof(float));
    other_bytes_ += rope_cos_.bytes() + rope_sin_.bytes();

    const size_t b = max_batch_;
    auto floats = [&](size_t count, const char* what) {
        return scratch(count * sizeof(float), what).get<float>();
    };
    x_ = floats(b * c.dim, "activations");
    xb_ = floats(b * std::max(c.dim, c.q_dim()), "activations");
    q_ = floats(b * c.q_dim(), "activations");
    k_ = floats(b * c.kv_dim(), "activations");
    v_ = floats(b * c.kv_dim(), "activations");
    att_ = floats(b * c.q_dim(), "activations");
    gate_ = floats(b * c.hidden_dim, "activations");
    up_ = floats(b * c.hidden_dim, "activations");
    logits_ = floats(b * c.vocab_size, "logits");
    att_scratch_ = floats(detail::attention_scratch_floats({c.n_heads, c.n_kv_heads, c.head_dim}, splits_),
                          "attention partials");
    d_tokens_ = scratch(b * sizeof(int32_t), "token ids").get<int32_t>();
    d_pos_ = scratch(sizeof(int32_t), "the position").get<int32_t>();
    h_tokens_ = pinned_buffer((b + 1) * sizeof(int32_t), "token ids");
    h_logits_ = pinned_buffer(b * c.vocab_size * sizeof(float), "logits");
    // cudaMemcpy from pageable memory may return before its DMA lands, and the work stream below
    // does not wait on the legacy stream: finish every upload before the first step.
    check(cudaDeviceSynchronize(), "weight upload");
    // Created last: a constructor that throws runs no destructor, and the buffers free themselves.
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
}

cuda_llama::~cuda_llama() {
    if (stream_) cudaStreamSynchronize(stream_);
    if (decode_graph_) cudaGraphExecDestroy(decode_graph_);
    if (stream_) cudaStreamDestroy(stream_);
}

device_buffer& cuda_llama::scratch(size_t bytes, const char* what) {
    activations_.emplace_back(std::max<size_t>(bytes, 1), what);
    other_bytes_ += activations_.back().bytes();
    return activations_.back();
}

device_weight cuda_llama::upload_matrix(const tensor_view& t) {
    if (auto it = uploaded_.find(&t); it != uploaded_.end()) return it->second;
    if (t.shape.size() != 2) throw error("tensor " + t.name + " is not a matrix");
    const size_t bytes = matrix_bytes(t);
    if (bytes > t.size) throw error("tensor " + t.name + " is shorter than its shape");
    device_buffer& buffer = weights_.emplace_back(bytes, t.name.c_str());
    buffer.upload_rows(t.data, uint32_t(t.type), size_t(t.rows()), size_t(t.cols()), size_t(row_bytes(t.type, t.cols())));
    weight_bytes_ += bytes;
    device_weight w{uint32_t(t.type), buffer.get<uint8_t>(), size_t(t.rows()), size_t(t.cols()),
                    size_t(row_bytes(t.type, t.cols()))};
    return uploaded_[&t] = w;
}

const float* cuda_llama::upload_f32(const tensor_view* t) {
    const std::vector<float> values = tensor_to_f32(*t);
    device_buffer& buffer = weights_.emplace_back(values.size() * sizeof(float), t->name.c_str());
    buffer.upload(values.data(), values.size() * sizeof(float));
    weight_bytes_ += buffer.bytes();
    return buffer.get<float>();
}

void cuda_llama::project(const device_weight& w, const float* x, size_t n, float* y) {
    if (n == 1)
        detail::matvec(w, x, y, stream_);
    else
        detail::gemm(w, x, n, y, stream_);
}

void cuda_llama::enqueue(size_t n, bool all_logits) {
    const llama_config& c = config_;
    const size_t dim = c.dim, kv_dim = c.kv_dim(), q_dim = c.q_dim(), hidden = c.hidden_dim;
    const float eps = float(c.norm_eps);
    const bool neox = c.rope == rope_style::neox;
    const size_t layer_cache = size_t(context_) * kv_dim;
    const detail::attention_shape shape{c.n_heads, c.n_kv_heads, c.head_dim};
    detail::embed(token_embd_, d_tokens_, n, x_, stream_);
    for (size_t l = 0; l < layers_.size(); ++l) {
        const layer& L = layers_[l];
        detail::rmsnorm(x_, L.attn_norm, xb_, n, dim, eps, stream_);
        project(L.wq, xb_, n, q_);
        project(L.wk, xb_, n, k_);
        project(L.wv, xb_, n, v_);
        if (L.bq) detail::add_bias(q_, L.bq, n, q_dim, stream_);
        if (L.bk) detail::add_bias(k_, L.bk, n, kv_dim, stream_);
        if (L.bv) detail::add_bias(v_, L.bv, n, kv_dim, stream_);
        detail::rope(q_, n, c.n_heads, c.head_dim, rope_cos_.get<float>(), rope_sin_.get<float>(), d_pos_, neox, stream_);
        detail::rope(k_, n, c.n_kv_heads, c.head_dim, rope_cos_.get<float>(), rope_sin_.get<float>(), d_pos_, neox,
                     stream_);
        uint16_t* keys = key_cache_.get<uint16_t>() + l * layer_cache;
        uint16_t* values = value_cache_.get<uint16_t>() + l * layer_cache;
        detail::store_kv(k_, v_, n, kv_dim, keys, values, d_pos_, stream_);
        detail::attention(q_, n, shape, keys, values, d_pos_, n == 1 ? splits_ : 1, att_scratch_, att_, stream_);
        project(L.wo, att_, n, xb_);
        detail::add(x_, xb_, n * dim, stream_);

        detail::rmsnorm(x_, L.ffn_norm, xb_, n, dim, eps, stream_);
        project(L.gate, xb_, n, gate_);
        project(L.up, xb_, n, up_);
        detail::swiglu(gate_, up_, n * hidden, stream_);
        project(L.down, gate_, n, xb_);
        detail::add(x_, xb_, n * dim, stream_);
    }
    const size_t rows = all_logits ? n : 1;
    const float* last = x_ + (n - rows) * dim;
    detail::rmsnorm(last, output_norm_, xb_, rows, dim, eps, stream_);
    project(output_, xb_, rows, logits_);
}

std::span<const float> cuda_llama::step(const int32_t* tokens, size_t n, int32_t pos, bool all_logits) {
    int32_t* host = h_tokens_.get<int32_t>();
    host[0] = pos;
    std::copy(tokens, tokens + n, host + 1);
    check(cudaMemcpyAsync(d_pos_, host, sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "position upload");
    check(cudaMemcpyAsync(d_tokens_, host + 1, n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "token upload");
    if (n == 1 && use_graphs_) {
        if (!decode_graph_) {
            // Captured once: every launch of a decode step reads token and position from device
            // memory and uses fixed buffers, so the same graph replays at any position.
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

std::span<const float> cuda_llama::forward(int32_t token, int32_t pos) { return forward_batch({&token, 1}, pos, false); }

std::span<const float> cuda_llama::forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits) {
    if (tokens.empty()) throw error("forward_batch needs at least one token");
    if (pos < 0 || int64_t(pos) + int64_t(tokens.size()) > context_)
        throw error("positions " + std::to_string(pos) + ".." + std::to_string(int64_t(pos) + int64_t(tokens.size()) - 1) +
                    " are outside the context of " + std::to_string(context_));
    for (int32_t t : tokens)
        if (t < 0 || uint64_t(t) >= config_.vocab_size) throw error("token id " + std::to_string(t) + " is out of range");
    if (tokens.size() <= max_batch_) return step(tokens.data(), tokens.size(), pos, all_logits);
    // Longer prompts in steps of max_batch; with all_logits the rows are gathered on the host.
    std::vector<float>& gathered = gathered_;
    gathered.clear();
    std::span<const float> last;
    for (size_t done = 0; done < tokens.size(); done += max_batch_) {
        const size_t n = std::min(max_batch_, tokens.size() - done);
        last = step(tokens.data() + done, n, pos + int32_t(done), all_logits);
        if (all_logits) gathered.insert(gathered.end(), last.begin(), last.end());
    }
    if (all_logits) return gathered;
    return last;
}

}  // namespace

std::unique_ptr<cuda_model> make_cuda_model(std::shared_ptr<const model> m, const cuda_options& options) {
    if (m->is_deepseek2()) return detail::make_cuda_deepseek2(std::move(m), options);
    return std::make_unique<cuda_llama>(std::move(m), options);
}

}  // namespace kiln::cuda
