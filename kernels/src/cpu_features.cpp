// CPU feature detection: CPUID says what the core has, XCR0 (xgetbv) what the OS saves and
// restores; an AVX level is usable only when both agree (a hypervisor may hide the state).
#include "cpu_features.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#include <cstdint>
#endif

namespace kiln::kernels {
namespace {

#if defined(__x86_64__)
uint64_t read_xcr0() {
    uint32_t eax, edx;
    // xgetbv with ecx = 0, spelled as bytes-free inline asm so no -mxsave flag is needed.
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (uint64_t(edx) << 32) | eax;
}

cpu_features probe() {
    cpu_features f;
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
    const bool fma = ecx & (1u << 12), osxsave = ecx & (1u << 27), avx = ecx & (1u << 28),
               f16c = ecx & (1u << 29);
    if (!osxsave || !avx) return f;
    const uint64_t xcr0 = read_xcr0();
    const bool ymm_state = (xcr0 & 0x6) == 0x6;      // SSE and AVX state
    const bool zmm_state = (xcr0 & 0xe6) == 0xe6;    // plus opmask, ZMM_Hi256, Hi16_ZMM
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
    const bool avx2 = ebx & (1u << 5);
    const bool avx512f = ebx & (1u << 16), avx512dq = ebx & (1u << 17), avx512cd = ebx & (1u << 28),
               avx512bw = ebx & (1u << 30), avx512vl = ebx & (1u << 31);
    f.avx2 = ymm_state && avx2 && fma && f16c;
    f.avx512 = f.avx2 && zmm_state && avx512f && avx512dq && avx512cd && avx512bw && avx512vl;
    f.avx512vnni = f.avx512 && (ecx & (1u << 11));
    const unsigned max_subleaf = eax;  // leaf 7, subleaf 0 reports the last valid subleaf
    if (max_subleaf >= 1 && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx))
        f.avx512bf16 = f.avx512 && (eax & (1u << 5));
    return f;
}
#else
cpu_features probe() {
    cpu_features f;
#if defined(__aarch64__)
    f.neon = true;
#endif
    return f;
}
#endif

}  // namespace

const cpu_features& detect_cpu() {
    static const cpu_features features = probe();
    return features;
}

}  // namespace kiln::kernels
