// `kiln inspect`: metadata, tensor table, sizes and (with --verify) checksums of a .kiln file.
#include <cstdio>

#include "commands.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/kiln_file.hpp"

namespace kiln::cli {
namespace {

struct inspect_args {
    std::string path;
    bool verify = false;
    bool show_tensors = true;
};

std::string shape_text(const std::vector<uint64_t>& shape) {
    std::string s;
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? " x " : "") + std::to_string(shape[i]);
    return s;
}

void run_inspect(const inspect_args& args) {
    kiln_file file = kiln_file::open(args.path);
    std::printf("file: %s\nformat version: %u\nsize: %.2f MiB\n", args.path.c_str(), file.version(),
                file.file_size() / 1048576.0);
    std::printf("\nmetadata (%zu keys):\n", file.meta().values().size());
    for (const auto& [key, value] : file.meta().values()) std::printf("  %-32s %s\n", key.c_str(), describe(value).c_str());

    uint64_t total_bytes = 0, total_elements = 0;
    for (const auto& t : file.tensors()) {
        total_bytes += t.size;
        total_elements += t.n_elements();
    }
    std::printf("\ntensors: %zu, %.2f M parameters, %.2f MiB of weights\n", file.tensors().size(),
                total_elements / 1e6, total_bytes / 1048576.0);
    size_t bad = 0;
    if (args.show_tensors) {
        std::printf("  %-28s %-6s %-16s %12s%s\n", "name", "type", "shape", "bytes", args.verify ? "  checksum" : "");
        for (const auto& t : file.tensors()) {
            const char* verdict = "";
            if (args.verify) {
                bool ok = file.checksum_ok(t);
                bad += ok ? 0 : 1;
                verdict = ok ? "  ok" : "  MISMATCH";
            }
            std::printf("  %-28s %-6s %-16s %12llu%s\n", t.name.c_str(), std::string(type_name(t.type)).c_str(),
                        shape_text(t.shape).c_str(), static_cast<unsigned long long>(t.size), verdict);
        }
    }
    if (args.verify) {
        if (bad) throw file_error(args.path, std::to_string(bad) + " tensor checksum(s) do not match: the file is corrupt");
        std::printf("\nall %zu tensor checksums verified\n", file.tensors().size());
    }
}

}  // namespace

void setup_inspect(CLI::App& app) {
    auto args = std::make_shared<inspect_args>();
    auto* cmd = app.add_subcommand("inspect", "Show the metadata and tensors of a .kiln file");
    cmd->add_option("file", args->path, "A .kiln file")->required();
    cmd->add_flag("--verify", args->verify, "Recompute every tensor checksum");
    cmd->callback([args] { run_inspect(*args); });
}

}  // namespace kiln::cli
