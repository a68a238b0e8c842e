// The doctest runner for kiln_tests: every tests/*.cpp file adds its TEST_CASEs to it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
