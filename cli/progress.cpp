// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace kiln::cli {

progress_bar::progress_bar(std::string label) : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) != 0) {}

progress_bar::~progress_bar() {
    if (drawn_) std::fputc('\n', stderr);
}

void progress_bar::update(size_t done, size_t total, const std::string& detail) {
    if (!enabled_ || total == 0) return;
    constexpr int width = 30;
    const int filled = int(width * done / total);
    std::fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu %-32.32s", label_.c_str(), filled,
                 "##############################", width - filled, "", done, total, detail.c_str());
    std::fflush(stderr);
    drawn_ = true;
}

}  // namespace kiln::cli
