// Host wrappers that run one kernel on host data (see kernels_host.hpp): for tests.
#include "kiln/cuda/kernels_host.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>

#include "device_buffer.hpp"
#include "kiln/formats/error.hpp"
#include "launch.hpp"

namespace kiln::cuda::host {
namespace {

using detail::check;
using detail::device_buffer;

template <class T>
device_buffer to_device(const T* data, size_t count) {
    device_buffer buffer(std::max<size_t>(count, 1) * sizeof(T), "test data");
    buffer.upload(data, count * sizeof(T));
    return buffer;
}

template <class T>
std::vector<T> to_host(const device_buffer& buffer, size_t count) {
    check(cudaDeviceSynchronize(), "kernel");
    std::vector<T> out(count);
    check(cudaMemcpy(out.data(), buffer.get(), count * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return out;
}

device_buffer position(int32_t pos) { return to_device(&pos, 1); }

}  // namespace

std::vector<float> matmul(tensor_type type, const void* weights, size_t rows, size_t cols, const float* x, size_t n) {
    if (!row_fits(type, cols)) throw error("matmul: " + std::to_string(cols) + " columns do not fit the block size");
    const size_t row = size_t(row_bytes(type, cols));
    device_buffer w = to_device(static_cast<const uint8_t*>(weights), rows * row);
    device_buffer dx = to_device(x, n * cols), dy(std::max<size_t>(n * rows, 1) * sizeof(float), "test output");
    const detail::device_weight dw{uint32_t(type), w.get<uint8_t>(), rows, cols, row};
    if (n == 1)
        detail::matvec(dw, dx.get<float>(), dy.get<float>(), nullptr);
    else
        detail::gemm(dw, dx.get<float>(), n, dy.get<float>(), nullptr);
    return to_host<float>(dy, n * rows);
}

std::vector<float> embed(tensor_type type, const void* table, size_t rows, size_t cols,
                         const std::vector<int32_t>& tokens) {
    const size_t row = size_t(row_bytes(type, cols));
    device_buffer w = to_device(static_cast<const uint8_t*>(table), rows * row);
    device_buffer ids = to_device(tokens.data(), tokens.size());
    device_buffer out(std::max<size_t>(tokens.size() * cols, 1) * sizeof(float), "test output");
    detail::embed({uint32_t(type), w.get<uint8_t>(), rows, cols, row}, ids.get<int32_t>(), tokens.size(),
                  out.get<float>(), nullptr);
    return to_host<float>(out, tokens.size() * cols);
}

std::vector<float> rmsnorm(const std::vector<float>& x, const std::vector<float>& weight, float eps) {
    const size_t dim = weight.size(), n = x.size() / dim;
    device_buffer dx = to_device(x.data(), x.size()), dw = to_device(weight.data(), dim);
    device_buffer out(x.size() * sizeof(float), "test output");
    detail::rmsnorm(dx.get<float>(), dw.get<float>(), out.get<float>(), n, dim, eps, nullptr);
    return to_host<float>(out, x.size());
}

std::vector<float> rope(const std::vector<float>& x, size_t n_heads, size_t head_dim, const std::vector<float>& cos,
                        const std::vector<float>& sin, int32_t pos, bool neox) {
    const size_t n = x.size() / (n_heads * head_dim);
    device_buffer dx = to_device(x.data(), x.size()), dc = to_device(cos.data(), cos.size()),
                  ds = to_device(sin.data(), sin.size()), dp = position(pos);
    detail::rope(dx.get<float>(), n, n_heads, head_dim, dc.get<float>(), ds.get<float>(), dp.get<int32_t>(), neox,
                 nullptr);
    return to_host<float>(dx, x.size());
}

std::vector<float> swiglu(const std::vector<float>& gate, const std::vector<float>& up) {
    device_buffer dg = to_device(gate.data(), gate.size()), du = to_device(up.data(), up.size());
    detail::swiglu(dg.get<float>(), du.get<float>(), gate.size(), nullptr);
    return to_host<float>(dg, gate.size());
}

std::vector<float> attention(const std::vector<float>& q, size_t n_heads, size_t n_kv_heads, size_t head_dim,
                             const std::vector<uint16_t>& k_cache, const std::vector<uint16_t>& v_cache, int32_t pos,
                             size_t splits) {
    const size_t n = q.size() / (n_heads * head_dim);
    const detail::attention_shape shape{n_heads, n_kv_heads, head_dim};
    device_buffer dq = to_device(q.data(), q.size()), dk = to_device(k_cache.data(), k_cache.size()),
                  dv = to_device(v_cache.data(), v_cache.size()), dp = position(pos);
    device_buffer scratch(detail::attention_scratch_floats(shape, splits) * sizeof(float) + 4, "test scratch");
    device_buffer out(q.size() * sizeof(float), "test output");
    detail::attention(dq.get<float>(), n, shape, dk.get<uint16_t>(), dv.get<uint16_t>(), dp.get<int32_t>(), splits,
                      scratch.get<float>(), out.get<float>(), nullptr);
    return to_host<float>(out, q.size());
}

void route_experts(const std::vector<float>& logits, size_t n_experts, size_t top_k, bool normalize, float scale,
                   std::vector<int32_t>& ids, std::vector<float>& weights) {
    if (n_experts == 0 || n_experts > detail::max_experts || top_k == 0 || top_k > n_experts)
        throw error("route_experts: " + std::to_string(top_k) + " of " + std::to_string(n_experts) +
                    " experts is not supported (1 <= top_k <= n_experts <= 256)");
    const size_t n = logits.size() / n_experts;
    device_buffer dl = to_device(logits.data(), logits.size());
    device_buffer di(std::max<size_t>(n * top_k, 1) * sizeof(int32_t), "test ids"),
        dw(std::max<size_t>(n * top_k, 1) * sizeof(float), "test weights");
    detail::route_experts(dl.get<float>(), n, n_experts, top_k, normalize, scale, di.get<int32_t>(), dw.get<float>(),
                          nullptr);
    ids = to_host<int32_t>(di, n * top_k);
    weights = to_host<float>(dw, n * top_k);
}

std::vector<uint16_t> to_f16(const std::vector<float>& values) {
    // Through the store kernel: keys and values are both these values, at position 0.
    device_buffer dx = to_device(values.data(), values.size()), dp = position(0);
    device_buffer k(values.size() * sizeof(uint16_t) + 2, "test cache"), v(values.size() * sizeof(uint16_t) + 2, "test cache");
    detail::store_kv(dx.get<float>(), dx.get<float>(), 1, values.size(), k.get<uint16_t>(), v.get<uint16_t>(),
                     dp.get<int32_t>(), nullptr);
    return to_host<uint16_t>(k, values.size());
}


namespace {

detail::weight_stack stack_of(tensor_type type, const device_buffer& w, size_t count, size_t rows, size_t cols) {
    if (!row_fits(type, cols)) throw error("matvec: " + std::to_string(cols) + " columns do not fit the block size");
    const size_t row = size_t(row_bytes(type, cols));
    return {{uint32_t(type), w.get<uint8_t>(), rows, cols, row}, count, rows * row};
}

}  // namespace

std::vector<float> head_matvec(tensor_type type, const void* weights, size_t heads, size_t rows, size_t cols,
                               const std::vector<float>& x) {
    const size_t n = x.size() / (heads * cols);
    device_buffer w = to_device(static_cast<const uint8_t*>(weights), heads * rows * size_t(row_bytes(type, cols)));
    device_buffer dx = to_device(x.data(), x.size()), dy(std::max<size_t>(n * heads * rows, 1) * sizeof(float), "test output");
    detail::batched_matvec(stack_of(type, w, heads, rows, cols), nullptr,
                           {n * heads, heads, heads * cols, cols, heads * rows, rows}, dx.get<float>(), dy.get<float>(),
                           nullptr);
    return to_host<float>(dy, n * heads * rows);
}

std::vector<float> expert_matvec(tensor_type type, const void* weights, size_t n_experts, size_t rows, size_t cols,
                                 const std::vector<int32_t>& ids, size_t top_k, const std::vector<float>& x) {
    const size_t pairs = ids.size();
    for (int32_t id : ids)
        if (id < 0 || size_t(id) >= n_experts) throw error("expert_matvec: expert id out of range");
    device_buffer w = to_device(static_cast<const uint8_t*>(weights), n_experts * rows * size_t(row_bytes(type, cols)));
    device_buffer di = to_device(ids.data(), ids.size()), dx = to_device(x.data(), x.size());
    device_buffer dy(std::max<size_t>(pairs * rows, 1) * sizeof(float), "test output");
    detail::batched_matvec(stack_of(type, w, n_experts, rows, cols), di.get<int32_t>(),
                           {pairs, top_k, cols, 0, top_k * rows, rows}, dx.get<float>(), dy.get<float>(), nullptr);
    return to_host<float>(dy, pairs * rows);
}

std::vector<float> moe_combine(const std::vector<float>& x, const std::vector<float>& expert_out,
                               const std::vector<int32_t>& ids, const std::vector<float>& weights, size_t top_k) {
    const size_t n = ids.size() / top_k, dim = x.size() / n;
    device_buffer dx = to_device(x.data(), x.size()), de = to_device(expert_out.data(), expert_out.size()),
                  di = to_device(ids.data(), ids.size()), dw = to_device(weights.data(), weights.size());
    detail::moe_combine(dx.get<float>(), de.get<float>(), di.get<int32_t>(), dw.get<float>(), n, top_k, dim, nullptr);
    return to_host<float>(dx, x.size());
}

std::vector<uint16_t> store_latent(const std::vector<float>& kv, size_t lora, size_t rope,
                                   const std::vector<float>& norm, float eps, const std::vector<float>& cos,
                                   const std::vector<float>& sin, int32_t pos) {
    const size_t width = lora + rope, n = kv.size() / width, positions = size_t(pos) + n;
    device_buffer dkv = to_device(kv.data(), kv.size()), dn = to_device(norm.data(), norm.size()),
                  dc = to_device(cos.data(), cos.size()), ds = to_device(sin.data(), sin.size()), dp = position(pos);
    const std::vector<uint16_t> zeros(positions * width);
    device_buffer cache = to_device(zeros.data(), zeros.size());
    detail::store_latent(dkv.get<float>(), n, lora, rope, dn.get<float>(), eps, dc.get<float>(), ds.get<float>(),
                         dp.get<int32_t>(), cache.get<uint16_t>(), nullptr);
    return to_host<uint16_t>(cache, zeros.size());
}

std::vector<float> rope_query_tail(const std::vector<float>& q, size_t heads, size_t nope, size_t rope, size_t lora,
                                   const std::vector<float>& cos, const std::vector<float>& sin, int32_t pos) {
    const size_t n = q.size() / (heads * (nope + rope));
    const std::vector<float> zeros(n * heads * (lora + rope));
    device_buffer dq = to_device(q.data(), q.size()), dqa = to_device(zeros.data(), zeros.size()),
                  dc = to_device(cos.data(), cos.size()), ds = to_device(sin.data(), sin.size()), dp = position(pos);
    detail::rope_query_tail(dq.get<float>(), n, heads, nope, rope, lora, dc.get<float>(), ds.get<float>(),
                            dp.get<int32_t>(), dqa.get<float>(), nullptr);
    return to_host<float>(dqa, zeros.size());
}

std::vector<float> latent_attention(const std::vector<float>& q, size_t heads, size_t lora, size_t rope, float scale,
                                    const std::vector<uint16_t>& cache, int32_t pos, size_t splits) {
    if (lora == 0 || lora > detail::max_latent_lora) throw error("latent_attention: unsupported kv_lora_rank");
    const size_t n = q.size() / (heads * (lora + rope));
    const detail::latent_shape shape{heads, lora, rope, scale};
    detail::prepare_latent_attention(shape);
    device_buffer dq = to_device(q.data(), q.size()), dcache = to_device(cache.data(), cache.size()),
                  dp = position(pos);
    device_buffer scratch(detail::latent_scratch_floats(shape, splits) * sizeof(float) + 4, "test scratch");
    device_buffer out(std::max<size_t>(n * heads * lora, 1) * sizeof(float), "test output");
    detail::latent_attention(dq.get<float>(), n, shape, dcache.get<uint16_t>(), dp.get<int32_t>(), splits,
                             scratch.get<float>(), out.get<float>(), nullptr);
    return to_host<float>(out, n * heads * lora);
}

}  // namespace kiln::cuda::host
