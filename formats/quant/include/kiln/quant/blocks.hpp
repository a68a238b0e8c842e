// Byte layout of the quantized weight blocks, written once for the quantizers and the kernels.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln::quant {

// All blocks are packed with 2-byte alignment (f16 fields first), so a row of blocks is a plain
// byte array with no padding and blocks may sit at any even address.

// q8_0: 32 elements, x[i] = d * q[i].
inline constexpr size_t q8_0_elems = 32;
struct q8_0_block {
    uint16_t d;  // f16 scale
    int8_t q[32];
};

// q4_0: 32 elements, x[i] = d * (q[i] - 8) with q in 0..15. Byte j holds element j in its low
// nibble and element j + 16 in its high nibble, so one shift splits a block into two halves.
inline constexpr size_t q4_0_elems = 32;
struct q4_0_block {
    uint16_t d;  // f16 scale
    uint8_t q[16];
};

// q4_k: a super-block of 256 elements as 8 sub-blocks of 32. Sub-block j has a 6-bit scale
// sc[j] and a 6-bit min m[j]; x = d * sc[j] * q - dmin * m[j] with q in 0..15.
//   scales[0..5]  : the 8 scales as one 48-bit little-endian field, sc[j] = bits 6j .. 6j+5
//   scales[6..11] : the 8 mins, the same way
//   q[128]        : sub-block j in bytes 16j .. 16j+15, ordered like q4_0: byte i holds its
//                   element i (low nibble) and element i + 16 (high nibble). A 32-byte load
//                   holds two sub-blocks; with the paired activation copy (kernels.hpp) the
//                   two nibble halves of both multiply without any shuffle.
inline constexpr size_t q4_k_elems = 256;
struct q4_k_block {
    uint16_t d;     // f16 super scale of the sub-block scales
    uint16_t dmin;  // f16 super scale of the sub-block mins
    uint8_t scales[12];
    uint8_t q[128];
};

static_assert(sizeof(q8_0_block) == 34);
static_assert(sizeof(q4_0_block) == 18);
static_assert(sizeof(q4_k_block) == 144);

// Reads the 6-bit field j (0..7) of a 48-bit little-endian packed group of 6 bytes.
inline uint32_t unpack6(const uint8_t* packed, unsigned j) {
    uint64_t bits = 0;
    for (unsigned b = 0; b < 6; ++b) bits |= uint64_t(packed[b]) << (8 * b);
    return uint32_t(bits >> (6 * j)) & 63u;
}

}  // namespace kiln::quant
