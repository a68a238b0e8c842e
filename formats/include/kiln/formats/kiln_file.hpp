// Reading a .kiln file: mmap it, validate every field against the file, then hand out views of
// the tensors in place (see formats/SPEC.md).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "kiln/formats/metadata.hpp"
#include "kiln/formats/tensor_type.hpp"

namespace kiln {

inline constexpr uint32_t kiln_format_version = 1;
inline constexpr uint32_t kiln_alignment = 64;
inline constexpr uint32_t kiln_max_dims = 4;

// A non-owning view of one tensor's bytes inside the mapped file.
struct tensor_view {
    std::string name;
    tensor_type type = tensor_type::f32;
    uint32_t layout = 0;
    std::vector<uint64_t> shape;  // outermost first
    uint64_t offset = 0;          // from the start of the file
    uint64_t size = 0;            // bytes
    uint64_t checksum = 0;
    const std::byte* data = nullptr;

    uint64_t cols() const { return shape.back(); }
    uint64_t rows() const;  // product of all dims but the last
    uint64_t n_elements() const { return rows() * cols(); }
};

class kiln_file {
public:
    // Throws kiln::file_error naming the file and the problem.
    static kiln_file open(const std::filesystem::path& path);

    kiln_file(kiln_file&&) noexcept;
    kiln_file& operator=(kiln_file&&) noexcept;
    kiln_file(const kiln_file&) = delete;
    kiln_file& operator=(const kiln_file&) = delete;
    ~kiln_file();

    const std::filesystem::path& path() const { return path_; }
    uint64_t file_size() const { return size_; }
    uint32_t version() const { return version_; }
    const metadata& meta() const { return meta_; }
    const std::vector<tensor_view>& tensors() const { return tensors_; }

    const tensor_view* find(const std::string& name) const;
    // Throws file_error when the tensor is absent.
    const tensor_view& get(const std::string& name) const;
    // Recomputes the checksum of a tensor's bytes.
    bool checksum_ok(const tensor_view& tensor) const;

private:
    kiln_file() = default;
    void unmap();

    std::filesystem::path path_;
    const std::byte* base_ = nullptr;
    uint64_t size_ = 0;
    uint32_t version_ = 0;
    metadata meta_;
    std::vector<tensor_view> tensors_;
};

uint64_t checksum_bytes(const void* data, uint64_t size);

// "[rows, cols]": a tensor shape as error messages print it.
std::string shape_string(const std::vector<uint64_t>& shape);

}  // namespace kiln
