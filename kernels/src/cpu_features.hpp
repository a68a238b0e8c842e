// Internal: what the CPU and its OS let kiln run (x86: CPUID bits and XCR0 enabled state).
#pragma once

namespace kiln::kernels {

struct cpu_features {
    bool avx2 = false;    // AVX2 + FMA + F16C, with YMM state enabled by the OS
    bool avx512 = false;  // AVX-512 F/CD/DQ/BW/VL, with ZMM and opmask state enabled by the OS
    bool avx512vnni = false;
    bool avx512bf16 = false;  // vdpbf16ps (CPUID leaf 7, subleaf 1)
    bool neon = false;    // aarch64 (Advanced SIMD is part of the base architecture)
};

const cpu_features& detect_cpu();

}  // namespace kiln::kernels
