// Thread count detection and the task arena.
#include "kiln/runtime/thread_pool.hpp"

#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace kiln {

int physical_core_count() {
    // Linux: count distinct (package, core) pairs; SMT siblings share both.
    std::set<std::pair<std::string, std::string>> cores;
    for (unsigned cpu = 0; cpu < 4096; ++cpu) {
        const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
        std::ifstream package(base + "physical_package_id"), core(base + "core_id");
        if (!package || !core) break;
        std::string p, c;
        package >> p;
        core >> c;
        cores.emplace(p, c);
    }
    if (!cores.empty()) return int(cores.size());
    return std::max(1u, std::thread::hardware_concurrency());
}

thread_pool::thread_pool(int n_threads)
    : threads_(n_threads > 0 ? n_threads : physical_core_count()), arena_(threads_) {
    arena_.initialize();
}

}  // namespace kiln
