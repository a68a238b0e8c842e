// The .kiln reader: mmap, validate every field against the file, expose tensors in place.
#include "kiln/formats/kiln_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <utility>

#include "byte_io.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/kiln_writer.hpp"
#include "kiln_header.hpp"
#include "metadata_codec.hpp"

namespace kiln {
namespace {

constexpr uint32_t max_name_length = 1024;

// Maps the whole file read-only. An empty file cannot be mapped and is refused by the caller.
const std::byte* map_file(const std::filesystem::path& path, uint64_t& size) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw file_error(path, std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        throw file_error(path, std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw file_error(path, "not a regular file");
    }
    size = static_cast<uint64_t>(st.st_size);
    if (size < sizeof(detail::kiln_header)) {
        ::close(fd);
        throw file_error(path, size == 0 ? "empty file" : "truncated header (" + std::to_string(size) + " bytes)");
    }
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw file_error(path, std::string("mmap failed: ") + std::strerror(e));
    return static_cast<const std::byte*>(p);
}

void check_header(const detail::kiln_header& h, uint64_t real_size) {
    if (std::memcmp(h.magic, detail::kiln_magic, 4) != 0) throw error("wrong magic: not a .kiln file");
    if (h.version != kiln_format_version)
        throw error("unsupported version " + std::to_string(h.version) + " (this kiln reads version " +
                    std::to_string(kiln_format_version) + ")");
    if (h.file_size != real_size)
        throw error(real_size < h.file_size ? "truncated: header says " + std::to_string(h.file_size) +
                                                  " bytes, file has " + std::to_string(real_size)
                                            : "file has " + std::to_string(real_size - h.file_size) +
                                                  " bytes beyond the size its header gives");
    if (h.alignment < kiln_alignment || (h.alignment & (h.alignment - 1)) != 0)
        throw error("alignment " + std::to_string(h.alignment) + " is not a power of two >= 64");
    if (h.meta_offset != sizeof(detail::kiln_header)) throw error("metadata offset is not 80");
    // Each section starts where the previous ends; compare by subtraction so nothing overflows.
    if (h.meta_size > real_size - h.meta_offset) throw error("metadata section runs past the end of the file");
    if (h.table_offset != h.meta_offset + h.meta_size) throw error("tensor table does not follow the metadata");
    if (h.table_size > real_size - h.table_offset) throw error("tensor table runs past the end of the file");
    if (h.data_offset < h.table_offset + h.table_size || h.data_offset > real_size)
        throw error("data offset " + std::to_string(h.data_offset) + " is outside the file or inside the table");
    if (h.data_offset % h.alignment != 0) throw error("data offset is not aligned");
}

std::vector<tensor_view> read_table(detail::byte_reader& in, const detail::kiln_header& h, const std::byte* base) {
    std::vector<tensor_view> tensors;
    // Each entry takes at least 4 + 1 + 12 + 8 + 24 bytes: bound the count before reserving.
    if (h.tensor_count > in.remaining() / 49) in.fail("tensor count " + std::to_string(h.tensor_count) + " is too large");
    tensors.reserve(h.tensor_count);
    std::unordered_set<std::string> names;
    const uint64_t data_size = h.file_size - h.data_offset;
    for (uint32_t i = 0; i < h.tensor_count; ++i) {
        tensor_view t;
        uint32_t name_length = in.read<uint32_t>();
        if (name_length == 0 || name_length > max_name_length)
            in.fail("tensor name length " + std::to_string(name_length) + " is out of range");
        t.name = in.read_string(name_length);
        if (!names.insert(t.name).second) in.fail("tensor '" + t.name + "' appears twice");
        const std::string where = "tensor '" + t.name + "'";
        uint32_t type_value = in.read<uint32_t>();
        auto type = tensor_type_from_u32(type_value);
        if (!type) in.fail(where + " has unknown type " + std::to_string(type_value));
        t.type = *type;
        t.layout = in.read<uint32_t>();
        if (t.layout != tensor_layout(t.type))
            in.fail(where + " has layout " + std::to_string(t.layout) + ", not the " +
                    std::to_string(tensor_layout(t.type)) + " of type " + std::string(type_name(t.type)) +
                    (t.layout == 0 ? " (written by an older kiln: convert the model again)" : ""));
        uint32_t n_dims = in.read<uint32_t>();
        if (n_dims == 0 || n_dims > kiln_max_dims) in.fail(where + " has " + std::to_string(n_dims) + " dims");
        t.shape = in.read_array<uint64_t>(n_dims);
        uint64_t elements = 1;
        for (uint64_t d : t.shape) {
            if (d == 0 || d > (uint64_t(1) << 40) || elements > (uint64_t(1) << 48) / d)
                in.fail(where + " has an impossible shape");
            elements *= d;
        }
        uint64_t relative_offset = in.read<uint64_t>();
        t.size = in.read<uint64_t>();
        t.checksum = in.read<uint64_t>();
        if (!row_fits(t.type, t.cols()))
            in.fail(where + ": rows of " + std::to_string(t.cols()) + " do not fit type " + std::string(type_name(t.type)));
        if (t.size != tensor_bytes(t.type, t.shape))
            in.fail(where + ": size " + std::to_string(t.size) + " does not match its shape and type (" +
                    std::to_string(tensor_bytes(t.type, t.shape)) + " bytes)");
        if (relative_offset % h.alignment != 0) in.fail(where + ": data offset is not aligned");
        if (relative_offset > data_size || t.size > data_size - relative_offset)
            in.fail(where + ": data runs past the end of the file");
        t.offset = h.data_offset + relative_offset;
        t.data = base + t.offset;
        tensors.push_back(std::move(t));
    }
    if (in.remaining() != 0) in.fail(std::to_string(in.remaining()) + " unexplained bytes after the last entry");
    // Overlap check on the sorted extents.
    std::vector<const tensor_view*> by_offset;
    for (const auto& t : tensors) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i)
        if (by_offset[i - 1]->offset + by_offset[i - 1]->size > by_offset[i]->offset)
            throw error("tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap");
    return tensors;
}

}  // namespace

uint64_t tensor_view::rows() const {
    uint64_t r = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) r *= shape[i];
    return r;
}

kiln_file kiln_file::open(const std::filesystem::path& path) {
    kiln_file file;
    file.path_ = path;
    file.base_ = map_file(path, file.size_);
    try {
        detail::kiln_header h;
        std::memcpy(&h, file.base_, sizeof h);
        check_header(h, file.size_);
        file.version_ = h.version;
        const std::byte* index = file.base_ + h.meta_offset;
        if (checksum_bytes(index, h.meta_size + h.table_size) != h.index_checksum)
            throw error("index checksum mismatch: the metadata or tensor table is corrupt");
        detail::byte_reader meta_in(index, h.meta_size, "metadata");
        file.meta_ = detail::decode_metadata(meta_in);
        detail::byte_reader table_in(file.base_ + h.table_offset, h.table_size, "tensor table");
        file.tensors_ = read_table(table_in, h, file.base_);
    } catch (const file_error&) {
        throw;
    } catch (const std::exception& e) {
        throw file_error(path, e.what());
    }
    return file;
}

kiln_file::kiln_file(kiln_file&& other) noexcept { *this = std::move(other); }

kiln_file& kiln_file::operator=(kiln_file&& other) noexcept {
    if (this != &other) {
        unmap();
        path_ = std::move(other.path_);
        base_ = std::exchange(other.base_, nullptr);
        size_ = std::exchange(other.size_, 0);
        version_ = other.version_;
        meta_ = std::move(other.meta_);
        tensors_ = std::move(other.tensors_);
    }
    return *this;
}

kiln_file::~kiln_file() { unmap(); }

void kiln_file::unmap() {
    if (base_) ::munmap(const_cast<std::byte*>(base_), size_);
    base_ = nullptr;
}

const tensor_view* kiln_file::find(const std::string& name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

const tensor_view& kiln_file::get(const std::string& name) const {
    if (const tensor_view* t = find(name)) return *t;
    throw file_error(path_, "tensor '" + name + "' is missing");
}

bool kiln_file::checksum_ok(const tensor_view& tensor) const {
    return checksum_bytes(tensor.data, tensor.size) == tensor.checksum;
}

std::string shape_string(const std::vector<uint64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

}  // namespace kiln
