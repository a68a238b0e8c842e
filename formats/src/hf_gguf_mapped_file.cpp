// POSIX mmap of an input model file (GGUF or safetensors), read-only and shared.
#include "hf_gguf_mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kiln/formats/error.hpp"

namespace kiln::detail {

std::shared_ptr<const mapped_file> mapped_file::open(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw file_error(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw file_error(path, "not a regular file");
    }
    std::shared_ptr<mapped_file> file(new mapped_file());
    file->path_ = path;
    file->size_ = static_cast<uint64_t>(st.st_size);
    if (file->size_ > 0) {
        void* base = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (base == MAP_FAILED) {
            int err = errno;
            ::close(fd);
            throw file_error(path, std::string("cannot map: ") + std::strerror(err));
        }
        file->base_ = static_cast<const std::byte*>(base);
    }
    ::close(fd);  // the mapping keeps its own reference to the file
    return file;
}

mapped_file::~mapped_file() {
    if (base_) ::munmap(const_cast<std::byte*>(base_), size_);
}

}  // namespace kiln::detail
