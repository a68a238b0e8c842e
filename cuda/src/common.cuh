// Device helpers shared by the kernels: 16-bit float decoding, warp and RMSNorm block reductions,
// and the one dequantizer every matrix kernel reads weights through.
#pragma once
#include <cuda_fp16.h>

#include <cstddef>
#include <cstdint>

#include "launch.hpp"

namespace kiln::cuda::detail {

__device__ __forceinline__ float f16_bits_to_f32(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }
// bf16 is the upper half of a binary32: exact.
__device__ __forceinline__ float bf16_bits_to_f32(uint16_t bits) { return __uint_as_float(uint32_t(bits) << 16); }
__device__ __forceinline__ uint16_t f32_to_f16_bits(float v) { return __half_as_ushort(__float2half_rn(v)); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// 1 / sqrt(mean(row[i]^2) + eps) over row[0 .. dim), for every thread of a block of `threads`
// (a multiple of 32, at most 1024): each thread sums its strided share with fmaf, then warp sums,
// then one warp sums the warps' partials.
template <int threads>
__device__ __forceinline__ float block_inv_rms(const float* row, size_t dim, float eps) {
    float sum = 0.0f;
    for (size_t i = threadIdx.x; i < dim; i += threads) sum = fmaf(row[i], row[i], sum);
    __shared__ float partial[threads / 32];
    sum = warp_sum(sum);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum;
    __syncthreads();
    if (threadIdx.x < 32) {
        sum = threadIdx.x < threads / 32 ? partial[threadIdx.x] : 0.0f;
        sum = warp_sum(sum);
        if (threadIdx.x == 0) partial[0] = sum;
    }
    __syncthreads();
    return 1.0f / sqrtf(partial[0] / float(dim) + eps);
}

// Reads a 16-bit little-endian field byte by byte: q8_0 and q4_0 blocks (34 and 18 bytes) leave
// it at any even address, and a 2-byte load is always aligned there, but keeping to bytes makes
// no assumption about the base of a row.
__device__ __forceinline__ uint16_t load_u16(const uint8_t* p) { return uint16_t(p[0] | (uint16_t(p[1]) << 8)); }

// The 6-bit field j (0..7) of a 48-bit little-endian group of 6 bytes (quant::unpack6).
__device__ __forceinline__ uint32_t unpack6(const uint8_t* packed, unsigned j) {
    uint64_t bits = 0;
    for (unsigned b = 0; b < 6; ++b) bits |= uint64_t(packed[b]) << (8 * b);
    return uint32_t(bits >> (6 * j)) & 63u;
}

// Every weight type is read in groups of 8 consecutive elements: group g of a row covers
// elements 8g .. 8g+7, four groups make a 32-element unit (a q8_0/q4_0 block, a q4_k sub-block,
// or 32 plain floats). Elements at or past `cols` (only plain float rows may end mid-unit) read 0.
// The arithmetic follows the reference dequantizers (formats/quant) term by term.
__device__ __forceinline__ void dequant8(uint32_t type, const uint8_t* row, size_t cols, size_t g, float out[8]) {
    const size_t first = 8 * g;
    switch (type) {
        case w_q8_0: {
            const uint8_t* block = row + (g / 4) * 34;
            const float d = f16_bits_to_f32(load_u16(block));
            const int8_t* q = reinterpret_cast<const int8_t*>(block + 2) + (g % 4) * 8;
#pragma unroll
            for (int i = 0; i < 8; ++i) out[i] = d * float(q[i]);
            return;
        }
        case w_q4_0: {
            const uint8_t* block = row + (g / 4) * 18;
            const float d = f16_bits_to_f32(load_u16(block));
            const unsigned e0 = (g % 4) * 8;  // element within the block: byte e (low) or e - 16 (high)
            const uint8_t* q = block + 2 + (e0 & 15);
            const unsigned shift = e0 < 16 ? 0 : 4;
#pragma unroll
            for (int i = 0; i < 8; ++i) out[i] = float(int((q[i] >> shift) & 15) - 8) * d;
            return;
        }
        case w_q4_k: {
            const size_t unit = g / 4;
            const uint8_t* block = row + (unit / 8) * 144;
            const unsigned j = unsigned(unit % 8);
            const float scale = f16_bits_to_f32(load_u16(block)) * float(unpack6(block + 4, j));
            const float min = f16_bits_to_f32(load_u16(block + 2)) * float(unpack6(block + 10, j));
            const unsigned e0 = (g % 4) * 8;
            const uint8_t* q = block + 16 + 16 * j + (e0 & 15);
            const unsigned shift = e0 < 16 ? 0 : 4;
#pragma unroll
            for (int i = 0; i < 8; ++i) out[i] = scale * float((q[i] >> shift) & 15) - min;
            return;
        }
        case w_f16: {
            const uint8_t* p = row + 2 * first;
#pragma unroll
            for (int i = 0; i < 8; ++i) out[i] = first + i < cols ? f16_bits_to_f32(load_u16(p + 2 * i)) : 0.0f;
            return;
        }
        case w_bf16: {
            const uint8_t* p = row + 2 * first;
#pragma unroll
            for (int i = 0; i < 8; ++i) out[i] = first + i < cols ? bf16_bits_to_f32(load_u16(p + 2 * i)) : 0.0f;
            return;
        }
        default: {  // f32: rows start 4-byte aligned (the file aligns tensors; cols * 4 bytes per row)
            const float* p = reinterpret_cast<const float*>(row) + first;
#pragma unroll
            for (int i = 0; i < 8; ++i) out[i] = first + i < cols ? p[i] : 0.0f;
            return;
        }
    }
}

// Groups of 8 a row is read in (whole units of 32, the last maybe partly past cols).
__host__ __device__ __forceinline__ size_t groups_per_row(size_t cols) { return (cols + 31) / 32 * 4; }

}  // namespace kiln::cuda::detail
