// Helpers shared by the test files: where the real models are, temporary directories, running kiln.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace kiln::test {

// ../shared/models, or $KILN_MODELS when set.
inline std::filesystem::path models_dir() {
    if (const char* env = std::getenv("KILN_MODELS"); env && *env) return env;
    return KILN_DEFAULT_MODELS;
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path.string());
    return nlohmann::json::parse(in);
}

// A fresh directory under the system temp dir, removed when the object dies.
class temp_dir {
public:
    temp_dir() {
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() / ("kiln-test-" + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

struct command_result {
    int exit_code = 0;
    std::string out;  // stdout
    std::string err;  // stderr
};

// Runs the kiln executable with the given argument string (already shell-quoted).
inline command_result run_kiln(const std::string& args, const temp_dir& scratch) {
    auto out_path = scratch / "stdout.txt", err_path = scratch / "stderr.txt";
    std::string cmd = std::string("'") + KILN_BINARY + "' " + args + " >'" + out_path.string() + "' 2>'" +
                      err_path.string() + "'";
    int status = std::system(cmd.c_str());
    command_result r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    auto slurp = [](const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    return r;
}

// Single-quoted for the shell. Built with += because GCC 12 warns falsely (-Wrestrict) on
// "'" + std::string.
inline size_t count_lines(const std::string& s) { return size_t(std::count(s.begin(), s.end(), '\n')); }

// A command that failed with exactly one line on stderr, and that line names `words`; `what`
// (e.g. the arguments) is shown when the exit code is wrong.
inline void check_one_line_error(const command_result& r, const std::string& words, const std::string& what) {
    CHECK_MESSAGE(r.exit_code != 0, what);
    CHECK_MESSAGE(count_lines(r.err) == 1, r.err);
    CHECK_MESSAGE(r.err.find(words) != std::string::npos, r.err);
}

inline std::string quote(const std::filesystem::path& p) {
    std::string quoted(1, '\'');
    quoted += p.string();
    quoted += '\'';
    return quoted;
}

}  // namespace kiln::test
