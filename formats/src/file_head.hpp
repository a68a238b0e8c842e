// Internal: the first bytes of a file, for telling formats apart by content.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>

#include "kiln/formats/error.hpp"

namespace kiln::detail {

// Up to n bytes from the start of the file (fewer when it is shorter).
inline std::string first_bytes(const std::filesystem::path& path, size_t n) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw file_error(path, "cannot open");
    std::string bytes(n, '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(n));
    bytes.resize(static_cast<size_t>(in.gcount()));
    return bytes;
}

}  // namespace kiln::detail
