// Errors thrown by every kiln library: they carry the file and the problem, and the CLI prints
// them as one line. Libraries never exit() on bad input.
#pragma once
#include <filesystem>
#include <stdexcept>
#include <string>

namespace kiln {

class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A problem with one input file: what() reads "<path>: <problem>".
class file_error : public error {
public:
    file_error(const std::filesystem::path& path, const std::string& problem)
        : error(path.string() + ": " + problem), path_(path) {}
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

}  // namespace kiln
