// Every CUDA test starts with this: on a machine without a usable GPU it prints why and the
// test passes without running, so the suite builds and runs in CI (no GPU there).
#pragma once
#include <cstdio>
#include <string>

#include "kiln/cuda/cuda_backend.hpp"

#include <doctest/doctest.h>

namespace kiln::test {

inline bool gpu_or_skip() {
    const std::string why = cuda::unavailable_reason();
    if (why.empty()) return true;
    std::printf("SKIPPED: %s\n", why.c_str());
    MESSAGE("skipped: " << why);
    return false;
}

}  // namespace kiln::test
