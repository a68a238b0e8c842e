// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#pragma once
#include <cstddef>
#include <string>

namespace kiln::cli {

class progress_bar {
public:
    explicit progress_bar(std::string label);
    ~progress_bar();
    void update(size_t done, size_t total, const std::string& detail = {});

private:
    std::string label_;
    bool enabled_;
    bool drawn_ = false;
};

}  // namespace kiln::cli
