// A read-only memory map of one input file, shared by the GGUF and safetensors readers so that
// tensor callbacks can keep the mapping alive after the reader object is gone.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

namespace kiln::detail {

class mapped_file {
public:
    // Throws kiln::file_error when the file cannot be opened or mapped. An empty file maps to an
    // empty span (mmap refuses length 0).
    static std::shared_ptr<const mapped_file> open(const std::filesystem::path& path);

    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;
    ~mapped_file();

    const std::filesystem::path& path() const { return path_; }
    uint64_t size() const { return size_; }
    std::span<const std::byte> bytes() const { return {base_, static_cast<size_t>(size_)}; }

private:
    mapped_file() = default;
    std::filesystem::path path_;
    const std::byte* base_ = nullptr;
    uint64_t size_ = 0;
};

}  // namespace kiln::detail
