// The .kiln writer: lays out header, metadata, table and aligned data; writes a temporary file
// and renames it over the target only when every byte is on disk.
#include "kiln/formats/kiln_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <unordered_set>

#include "byte_io.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/kiln_file.hpp"
#include "kiln_header.hpp"
#include "metadata_codec.hpp"

namespace kiln {
namespace {

// An open temporary file that deletes itself unless commit() renamed it into place.
class temp_output {
public:
    explicit temp_output(const std::filesystem::path& target) : target_(target) {
        std::random_device rd;
        temp_ = target;
        temp_ += ".tmp" + std::to_string(rd() % 1000000);
        fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd_ < 0) throw file_error(target, std::string("cannot create: ") + std::strerror(errno));
    }
    ~temp_output() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_) ::unlink(temp_.c_str());
    }
    void write_at(uint64_t offset, const void* data, uint64_t size) {
        const char* p = static_cast<const char*>(data);
        while (size > 0) {
            ssize_t n = ::pwrite(fd_, p, size, static_cast<off_t>(offset));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw file_error(target_, std::string("write failed: ") + std::strerror(errno));
            p += n;
            offset += static_cast<uint64_t>(n);
            size -= static_cast<uint64_t>(n);
        }
    }
    void commit(uint64_t final_size) {
        if (::ftruncate(fd_, static_cast<off_t>(final_size)) != 0 || ::fsync(fd_) != 0)
            throw file_error(target_, std::string("write failed: ") + std::strerror(errno));
        ::close(fd_);
        fd_ = -1;
        if (::rename(temp_.c_str(), target_.c_str()) != 0)
            throw file_error(target_, std::string("cannot rename into place: ") + std::strerror(errno));
        committed_ = true;
    }

private:
    std::filesystem::path target_, temp_;
    int fd_ = -1;
    bool committed_ = false;
};

}  // namespace

uint64_t tensor_bytes(tensor_type type, const std::vector<uint64_t>& shape) {
    if (shape.empty()) throw error("tensor with no dims");
    uint64_t rows = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
    if (!row_fits(type, shape.back()))
        throw error("rows of " + std::to_string(shape.back()) + " do not fit type " + std::string(type_name(type)));
    return rows * row_bytes(type, shape.back());
}

void kiln_writer::add_tensor(std::string name, tensor_type type, std::vector<uint64_t> shape, fill_fn fill) {
    if (name.empty()) throw error("tensor with an empty name");
    for (const auto& t : tensors_)
        if (t.name == name) throw error("tensor '" + name + "' added twice");
    if (shape.empty() || shape.size() > kiln_max_dims) throw error("tensor '" + name + "' has a bad number of dims");
    for (uint64_t d : shape)
        if (d == 0) throw error("tensor '" + name + "' has a zero dim");
    uint64_t size = tensor_bytes(type, shape);
    tensors_.push_back({std::move(name), type, tensor_layout(type), std::move(shape), size, std::move(fill)});
}

void kiln_writer::add_tensor_bytes(std::string name, tensor_type type, std::vector<uint64_t> shape,
                                   std::vector<std::byte> bytes) {
    if (bytes.size() != tensor_bytes(type, shape)) throw error("tensor '" + name + "': byte count does not match shape");
    auto shared = std::make_shared<std::vector<std::byte>>(std::move(bytes));
    add_tensor(std::move(name), type, std::move(shape),
               [shared](std::span<std::byte> out) { std::memcpy(out.data(), shared->data(), out.size()); });
}

void kiln_writer::write(const std::filesystem::path& path, const progress_fn& progress) const {
    detail::byte_writer meta_bytes;
    detail::encode_metadata(meta_, meta_bytes);

    // Offsets of the data are known before any data is produced; checksums are not, so the
    // table is written last (the header's index checksum covers it).
    std::vector<uint64_t> offsets;
    uint64_t data_cursor = 0;
    for (const auto& t : tensors_) {
        offsets.push_back(data_cursor);
        data_cursor = detail::align_up(data_cursor + t.size, kiln_alignment);
    }
    auto encode_table = [&](const std::vector<uint64_t>& checksums) {
        detail::byte_writer table;
        for (size_t i = 0; i < tensors_.size(); ++i) {
            const auto& t = tensors_[i];
            table.put<uint32_t>(static_cast<uint32_t>(t.name.size()));
            table.put_string(t.name);
            table.put<uint32_t>(static_cast<uint32_t>(t.type));
            table.put<uint32_t>(t.layout);
            table.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
            for (uint64_t d : t.shape) table.put<uint64_t>(d);
            table.put<uint64_t>(offsets[i]);
            table.put<uint64_t>(t.size);
            table.put<uint64_t>(checksums[i]);
        }
        return table;
    };
    std::vector<uint64_t> checksums(tensors_.size(), 0);
    const uint64_t table_size = encode_table(checksums).bytes().size();

    detail::kiln_header h{};
    std::memcpy(h.magic, detail::kiln_magic, 4);
    h.version = kiln_format_version;
    h.meta_offset = sizeof(detail::kiln_header);
    h.meta_size = meta_bytes.bytes().size();
    h.table_offset = h.meta_offset + h.meta_size;
    h.table_size = table_size;
    h.data_offset = detail::align_up(h.table_offset + h.table_size, kiln_alignment);
    h.alignment = kiln_alignment;
    h.tensor_count = static_cast<uint32_t>(tensors_.size());
    h.file_size = h.data_offset + (tensors_.empty() ? 0 : offsets.back() + tensors_.back().size);

    temp_output out(path);
    std::vector<std::byte> buffer;
    for (size_t i = 0; i < tensors_.size(); ++i) {
        const auto& t = tensors_[i];
        buffer.assign(t.size, std::byte{0});
        t.fill(buffer);
        checksums[i] = checksum_bytes(buffer.data(), buffer.size());
        out.write_at(h.data_offset + offsets[i], buffer.data(), buffer.size());
        if (progress) progress(i + 1, tensors_.size());
    }
    buffer = {};

    detail::byte_writer table = encode_table(checksums);
    std::vector<char> index(meta_bytes.bytes());
    index.insert(index.end(), table.bytes().begin(), table.bytes().end());
    h.index_checksum = checksum_bytes(index.data(), index.size());
    out.write_at(0, &h, sizeof h);
    out.write_at(h.meta_offset, index.data(), index.size());
    out.commit(h.file_size);
}

}  // namespace kiln
