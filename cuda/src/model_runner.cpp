#include "model_runner.hpp"

#include <algorithm>
#include <string>

#include "kiln/formats/error.hpp"

namespace kiln::cuda::detail {
namespace {

size_t matrix_bytes(const tensor_view& t) { return size_t(t.rows()) * size_t(row_bytes(t.type, t.cols())); }

}  // namespace

model_runner::~model_runner() {
    if (stream_) cudaStreamSynchronize(stream_);
    if (decode_graph_) cudaGraphExecDestroy(decode_graph_);
    if (stream_) cudaStreamDestroy(stream_);
}

void model_runner::open_device(int ordinal) {
    if (const std::string why = unavailable_reason(ordinal); !why.empty()) throw error(why);
    check(cudaSetDevice(ordinal), "cudaSetDevice");
    device_ = describe_device(ordinal);
}

void model_runner::configure(const cuda_options& options, uint64_t model_context, uint64_t vocab) {
    if (options.max_batch <= 0) throw error("batch size must be positive");
    context_ = options.context_length > 0 ? options.context_length : int32_t(model_context);
    max_batch_ = size_t(options.max_batch);
    use_graphs_ = options.graphs;
    vocab_ = vocab;
    // Enough blocks per head that a long context fills the GPU, few enough that short ones
    // waste little (empty splits exit at once).
    splits_ = std::clamp<size_t>(size_t(context_) / 256, 1, 32);
}

void model_runner::finish_setup(size_t attention_scratch_floats) {
    const size_t b = max_batch_;
    logits_ = floats(b * vocab_, "logits");
    att_scratch_ = floats(attention_scratch_floats, "attention partials");
    d_tokens_ = scratch(b * sizeof(int32_t), "token ids").get<int32_t>();
    d_pos_ = scratch(sizeof(int32_t), "the position").get<int32_t>();
    h_tokens_ = pinned_buffer((b + 1) * sizeof(int32_t), "token ids");
    h_logits_ = pinned_buffer(b * vocab_ * sizeof(float), "logits");
    // cudaMemcpy from pageable memory may return before its DMA lands, and the work stream below
    // does not wait on the legacy stream: finish every upload before the first step.
    check(cudaDeviceSynchronize(), "weight upload");
    // Created last: nothing after it can throw, and a constructor that throws before it leaves
    // the destructor no stream to wait on.
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
}

device_buffer& model_runner::scratch(size_t bytes, const char* what) {
    activations_.emplace_back(std::max<size_t>(bytes, 1), what);
    other_bytes_ += activations_.back().bytes();
    return activations_.back();
}

device_buffer& model_runner::cache(size_t bytes, const char* what) {
    device_buffer& buffer = caches_.emplace_back(bytes, what);
    cache_bytes_ += buffer.bytes();
    return buffer;
}

device_weight model_runner::upload_matrix(const tensor_view& t) {
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

weight_stack model_runner::upload_stack(const tensor_view& t) {
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

const float* model_runner::upload_f32(const tensor_view* t) {
    const std::vector<float> values = tensor_to_f32(*t);
    device_buffer& buffer = weights_.emplace_back(values.size() * sizeof(float), t->name.c_str());
    buffer.upload(values.data(), values.size() * sizeof(float));
    weight_bytes_ += buffer.bytes();
    return buffer.get<float>();
}

void model_runner::upload_rope(const std::vector<float>& cos, const std::vector<float>& sin) {
    rope_cos_ = device_buffer(cos.size() * sizeof(float), "the RoPE table");
    rope_sin_ = device_buffer(sin.size() * sizeof(float), "the RoPE table");
    rope_cos_.upload(cos.data(), cos.size() * sizeof(float));
    rope_sin_.upload(sin.data(), sin.size() * sizeof(float));
    other_bytes_ += rope_cos_.bytes() + rope_sin_.bytes();
}

void model_runner::project(const device_weight& w, const float* x, size_t n, float* y) {
    if (n == 1)
        matvec(w, x, y, stream_);
    else
        gemm(w, x, n, y, stream_);
}

std::span<const float> model_runner::step(const int32_t* tokens, size_t n, int32_t pos, bool all_logits) {
    int32_t* host = h_tokens_.get<int32_t>();
    host[0] = pos;
    std::copy(tokens, tokens + n, host + 1);
    check(cudaMemcpyAsync(d_pos_, host, sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "position upload");
    check(cudaMemcpyAsync(d_tokens_, host + 1, n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "token upload");
    if (n == 1 && use_graphs_) {
        if (!decode_graph_) {
            // Captured once: every launch of a decode step reads token and position (and, for
            // deepseek2, the routed experts) from device memory and uses fixed buffers, so the
            // same graph replays at any position.
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
    const size_t count = (all_logits ? n : 1) * vocab_;
    float* out = h_logits_.get<float>();
    check(cudaMemcpyAsync(out, logits_, count * sizeof(float), cudaMemcpyDeviceToHost, stream_), "logits download");
    check(cudaStreamSynchronize(stream_), "forward pass");
    return {out, count};
}

std::span<const float> model_runner::forward(int32_t token, int32_t pos) {
    return forward_batch({&token, 1}, pos, false);
}

std::span<const float> model_runner::forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits) {
    if (tokens.empty()) throw error("forward_batch needs at least one token");
    if (pos < 0 || int64_t(pos) + int64_t(tokens.size()) > context_)
        throw error("positions " + std::to_string(pos) + ".." + std::to_string(int64_t(pos) + int64_t(tokens.size()) - 1) +
                    " are outside the context of " + std::to_string(context_));
    for (int32_t t : tokens)
        if (t < 0 || uint64_t(t) >= vocab_) throw error("token id " + std::to_string(t) + " is out of range");
    if (tokens.size() <= max_batch_) return step(tokens.data(), tokens.size(), pos, all_logits);
    // Longer prompts in steps of max_batch; with all_logits the rows are gathered on the host.
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

}  // namespace kiln::cuda::detail
