// The doctest runner for kiln_cuda_tests (built only with -DKILN_CUDA=ON).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
