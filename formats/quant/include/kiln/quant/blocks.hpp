// Byte layout of the quantized weight blocks, written once for the quantizers and the kernels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

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

// Grouped rows (tensor layout 1; SPEC.md) of q8_0 and q4_0: each run of block_group blocks of a
// row stores the run's f16 scales first, then the blocks' codes back to back; blocks after the
// last full run are stored whole. A row keeps its size. The kernels then load a run's scales
// with one 16-byte load and two (or four) blocks' codes with one 32- (64-) byte load, where
// whole 18- or 34-byte blocks would need eight scalar scale loads and a gather of codes.
inline constexpr size_t block_group = 8;

// Addresses of block b's scale and codes in a grouped row of n_blocks blocks of type Block.
template <class Block>
struct grouped_row {
    static constexpr size_t code_bytes = sizeof(Block) - 2;
    const uint8_t* row;
    size_t n_blocks;

    size_t grouped_blocks() const { return n_blocks / block_group * block_group; }
    const uint8_t* scale(size_t b) const {
        if (b >= grouped_blocks()) return row + b * sizeof(Block);
        return row + b / block_group * block_group * sizeof(Block) + 2 * (b % block_group);
    }
    const uint8_t* codes(size_t b) const {
        if (b >= grouped_blocks()) return row + b * sizeof(Block) + 2;
        return row + b / block_group * block_group * sizeof(Block) + 2 * block_group + code_bytes * (b % block_group);
    }
};

// Block b of a grouped row as a whole block, and back (quantizers, dequantizers, tests).
template <class Block>
Block load_grouped(const void* row, size_t n_blocks, size_t b) {
    const grouped_row<Block> g{static_cast<const uint8_t*>(row), n_blocks};
    Block out;
    std::memcpy(&out.d, g.scale(b), 2);
    std::memcpy(out.q, g.codes(b), grouped_row<Block>::code_bytes);
    return out;
}
template <class Block>
void store_grouped(void* row, size_t n_blocks, size_t b, const Block& in) {
    const grouped_row<Block> g{static_cast<const uint8_t*>(row), n_blocks};
    auto* base = static_cast<uint8_t*>(row);
    std::memcpy(base + (g.scale(b) - g.row), &in.d, 2);
    std::memcpy(base + (g.codes(b) - g.row), in.q, grouped_row<Block>::code_bytes);
}

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
