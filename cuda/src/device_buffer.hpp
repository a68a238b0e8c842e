// Owning device and pinned host allocations, freed in the destructor.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

namespace kiln::cuda::detail {

class device_buffer {
public:
    device_buffer() = default;
    // Throws kiln::error naming `what` and the size when the device is out of memory.
    device_buffer(size_t bytes, const char* what);
    ~device_buffer();
    device_buffer(device_buffer&& other) noexcept { *this = std::move(other); }
    device_buffer& operator=(device_buffer&& other) noexcept;
    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;

    template <class T = void>
    T* get() const { return static_cast<T*>(ptr_); }
    size_t bytes() const { return bytes_; }
    // Copies `bytes` bytes from host memory (synchronous).
    void upload(const void* src, size_t bytes);
    // Uploads `rows` weight rows of `cols` elements of `type` (a tensor_type value) in the plain
    // block order the device kernels read: q8_0 and q4_0 rows, grouped in the file
    // (kiln/quant/blocks.hpp), are re-ordered on the host in pieces of a few MiB.
    void upload_rows(const void* src, uint32_t type, size_t rows, size_t cols, size_t row_bytes);

private:
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

// Page-locked host memory: the only kind a device copy can overlap with, and which a copy into
// it can be awaited on the stream.
class pinned_buffer {
public:
    pinned_buffer() = default;
    pinned_buffer(size_t bytes, const char* what);
    ~pinned_buffer();
    pinned_buffer(pinned_buffer&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)) {}
    pinned_buffer& operator=(pinned_buffer&& other) noexcept;
    pinned_buffer(const pinned_buffer&) = delete;
    pinned_buffer& operator=(const pinned_buffer&) = delete;
    template <class T = void>
    T* get() const { return static_cast<T*>(ptr_); }

private:
    void* ptr_ = nullptr;
};

}  // namespace kiln::cuda::detail
