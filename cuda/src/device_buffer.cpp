// Device and pinned host allocations (see device_buffer.hpp).
#include "device_buffer.hpp"

#include <cuda_runtime_api.h>

#include <string>

#include "kiln/formats/error.hpp"
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
