// kiln --device: cpu runs as before; cuda without the backend built in, or without a GPU, stops
// with one clear line instead of running or crashing.
#include "deepseek2_fixtures.hpp"
#include "model_fixtures.hpp"
#ifdef KILN_HAVE_CUDA
#include "kiln/cuda/cuda_backend.hpp"
#endif

namespace kiln::test {

// The one line `--device cuda` stops with when kiln has no CUDA backend or no usable GPU; true
// when a GPU is there and the run went ahead (the caller then checks what it printed).
bool gpu_ran_or_refused_clearly(const command_result& gpu) {
#ifndef KILN_HAVE_CUDA
    CHECK(gpu.exit_code != 0);
    CHECK(gpu.err == "kiln: error: kiln was built without CUDA (-DKILN_CUDA=ON)\n");
    return false;
#else
    if (const std::string why = cuda::unavailable_reason(); !why.empty()) {
        MESSAGE("no GPU here: " << why);
        CHECK(gpu.exit_code != 0);
        CHECK(gpu.err == "kiln: error: " + why + "\n");
        CHECK(gpu.err.find("CUDA device") != std::string::npos);
        return false;
    }
    CHECK(gpu.exit_code == 0);
    return true;
#endif
}

TEST_CASE("kiln run --device cpu is the default path and --device cuda explains when it cannot run") {
    temp_dir dir;
    const std::string model = quote(converted_stories());
    const std::string base = "run -m " + model + " -p 'Once' --temp 0 -n 4 ";
    const auto cpu = run_kiln(base + "--device cpu", dir);
    CHECK(cpu.exit_code == 0);
    CHECK(run_kiln(base, dir).out == cpu.out);

    const auto gpu = run_kiln(base + "--device cuda", dir);
    if (gpu_ran_or_refused_clearly(gpu)) {
        CHECK(gpu.out == cpu.out);  // greedy: the same tokens (test_cuda_model checks logits)
        const auto verbose = run_kiln(base + "--device cuda -v", dir);
        CHECK(verbose.err.find("backend: cuda") != std::string::npos);
        CHECK(verbose.err.find("device memory") != std::string::npos);
    }
    const auto bad = run_kiln(base + "--device tpu", dir);
    CHECK(bad.exit_code != 0);
    CHECK(bad.err.find("--device") != std::string::npos);
    const auto reference = run_kiln(base + "--device cuda --reference", dir);
    CHECK(reference.exit_code != 0);
}

// deepseek2 takes --device cuda like llama: it runs (the same greedy tokens as the CPU, the
// latent cache in -v), or stops with the same one line when the backend or the GPU is missing.
TEST_CASE("kiln run --device cuda runs deepseek2 models, or explains when it cannot") {
    temp_dir dir;
    const std::string base = "run -m " + quote(deepseek2_tiny("deepseek2-tiny")) + " -p hi --temp 0 -n 8 ";
    const auto gpu = run_kiln(base + "--device cuda", dir);
    if (gpu_ran_or_refused_clearly(gpu)) {
        const auto cpu = run_kiln(base + "--device cpu", dir);
        CHECK(cpu.exit_code == 0);
        CHECK(gpu.out == cpu.out);  // greedy: the same tokens (test_cuda_deepseek2 checks logits)
        const auto verbose = run_kiln(base + "--device cuda -v", dir);
        CHECK(verbose.err.find("backend: cuda") != std::string::npos);
        CHECK(verbose.err.find("latent (MLA) cache f16") != std::string::npos);
    }
}

}  // namespace kiln::test
