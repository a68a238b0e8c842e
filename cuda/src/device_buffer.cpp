// Device and pinned host allocations (see device_buffer.hpp).
#include "device_buffer.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kiln/formats/error.hpp"
#include "kiln/formats/tensor_type.hpp"
#include "kiln/quant/quant.hpp"
#include "launch.hpp"

namespace kiln::cuda::detail {
namespace {

std::string mib(size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

device_buffer::device_buffer(size_t bytes, const char* what) : bytes_(bytes) {
    if (bytes == 0) return;
    if (cudaMalloc(&ptr_, bytes) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky-free allocation error before reporting
        ptr_ = nullptr;
        throw error(std::string("CUDA device out of memory allocating ") + what + " (" + mib(bytes) + ")");
    }
}

device_buffer::~device_buffer() {
    if (ptr_) cudaFree(ptr_);
}

device_buffer& device_buffer::operator=(device_buffer&& other) noexcept {
    if (this != &other) {
        if (ptr_) cudaFree(ptr_);
        ptr_ = std::exchange(other.ptr_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
}

void device_buffer::upload(const void* src, size_t bytes) {
    if (bytes) check(cudaMemcpy(ptr_, src, bytes, cudaMemcpyHostToDevice), "upload to the device");
}

void device_buffer::upload_rows(const void* src, uint32_t type, size_t rows, size_t cols, size_t row_bytes) {
    const auto t = tensor_type(type);
    if (tensor_layout(t) == 0) return upload(src, rows * row_bytes);
    const size_t piece_rows = std::max<size_t>(1, (size_t(4) << 20) / row_bytes);
    std::vector<std::byte> plain(std::min(rows, piece_rows) * row_bytes);
    const auto* in = static_cast<const std::byte*>(src);
    for (size_t r0 = 0; r0 < rows; r0 += piece_rows) {
        const size_t n = std::min(piece_rows, rows - r0);
        for (size_t r = 0; r < n; ++r)
            quant::ungroup_row(t, in + (r0 + r) * row_bytes, plain.data() + r * row_bytes, cols);
        check(cudaMemcpy(static_cast<std::byte*>(ptr_) + r0 * row_bytes, plain.data(), n * row_bytes,
                         cudaMemcpyHostToDevice),
              "upload to the device");
    }
}

pinned_buffer::pinned_buffer(size_t bytes, const char* what) {
    if (cudaMallocHost(&ptr_, bytes) != cudaSuccess) {
        cudaGetLastError();
        ptr_ = nullptr;
        throw error(std::string("cannot allocate pinned host memory for ") + what + " (" + mib(bytes) + ")");
    }
}

pinned_buffer::~pinned_buffer() {
    if (ptr_) cudaFreeHost(ptr_);
}

pinned_buffer& pinned_buffer::operator=(pinned_buffer&& other) noexcept {
    if (this != &other) {
        if (ptr_) cudaFreeHost(ptr_);
        ptr_ = std::exchange(other.ptr_, nullptr);
    }
    return *this;
}

}  // namespace kiln::cuda::detail
