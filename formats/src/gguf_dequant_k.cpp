// The GGML "K" super-block formats (256 elements each): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
// Each super-block splits into 128-element halves (Q2/Q3/Q6) or 64-element pairs of 32 (Q4/Q5),
// with per-sub-block scales packed as described above each decoder.
#include <cstdint>

#include "gguf_dequant_blocks.hpp"

namespace kiln::detail {

// Q2_K (84 bytes): scales[16], qs[64], f16 d, f16 dmin. Sub-block s of 16 elements has scale
// d * (scales[s] & 15) and min dmin * (scales[s] >> 4); x = scale * q - min.
// Element e = 128 h + 32 j + l (h half, j 0..3, l 0..31) is the 2-bit field at shift 2j of
// qs[32 h + l]; its sub-block is 8 h + 2 j + l / 16.
void decode_q2_k_block(const uint8_t* block, float* out) {
    const uint8_t* scales = block;
    const uint8_t* qs = block + 16;
    const float d = load_f16(block + 80), dmin = load_f16(block + 82);
    for (int h = 0; h < 2; ++h)
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 32; ++l) {
                const uint8_t sc = scales[8 * h + 2 * j + l / 16];
                const int q = (qs[32 * h + l] >> (2 * j)) & 3;
                out[128 * h + 32 * j + l] = d * static_cast<float>(sc & 15) * static_cast<float>(q) -
                                            dmin * static_cast<float>(sc >> 4);
            }
}

// Q3_K (110 bytes): hmask[32], qs[64], scales[12], f16 d. Elements as Q2_K for the low two bits;
// the third bit is bit (4 h + j) of hmask[l], and a clear bit means "subtract 4": x = d * s * (q - 4·!bit).
// The 16 scales are 6-bit, stored biased by 32: the low 4 bits of scale i are the low (i < 8) or
// high (i >= 8) nibble of scales[i % 8], the top 2 bits are bits 2 (i / 4) .. +1 of scales[8 + i % 4].
void decode_q3_k_block(const uint8_t* block, float* out) {
    const uint8_t* hmask = block;
    const uint8_t* qs = block + 32;
    const uint8_t* packed = block + 96;
    const float d = load_f16(block + 108);
    int scale[16];
    for (int i = 0; i < 16; ++i) {
        const int low = i < 8 ? packed[i] & 15 : packed[i - 8] >> 4;
        const int high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
        scale[i] = (low | (high << 4)) - 32;
    }
    for (int h = 0; h < 2; ++h)
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 32; ++l) {
                int q = (qs[32 * h + l] >> (2 * j)) & 3;
                if (!(hmask[l] & (1u << (4 * h + j)))) q -= 4;
                out[128 * h + 32 * j + l] = d * static_cast<float>(scale[8 * h + 2 * j + l / 16]) * static_cast<float>(q);
            }
}

// The 6-bit (scale, min) pairs of Q4_K and Q5_K, 8 of them in 12 bytes: pairs 0..3 are the low 6
// bits of bytes i and i + 4; pairs 4..7 take their low 4 bits from the nibbles of byte i + 4 and
// their top 2 bits from the spare top bits of bytes i - 4 and i.
static void unpack_k4_scales(const uint8_t* packed, int i, int& scale, int& min) {
    if (i < 4) {
        scale = packed[i] & 63;
        min = packed[i + 4] & 63;
    } else {
        scale = (packed[i + 4] & 15) | ((packed[i - 4] >> 6) << 4);
        min = (packed[i + 4] >> 4) | ((packed[i] >> 6) << 4);
    }
}

// Q4_K (144 bytes): f16 d, f16 dmin, scales[12], qs[128]. Eight sub-blocks of 32; element
// e = 64 p + 32 k + l is the low (k = 0) or high (k = 1) nibble of qs[32 p + l], sub-block 2 p + k;
// x = d * scale * q - dmin * min.
void decode_q4_k_block(const uint8_t* block, float* out) {
    const float d = load_f16(block), dmin = load_f16(block + 2);
    const uint8_t* packed = block + 4;
    const uint8_t* qs = block + 16;
    for (int p = 0; p < 4; ++p)
        for (int k = 0; k < 2; ++k) {
            int scale, min;
            unpack_k4_scales(packed, 2 * p + k, scale, min);
            const float mul = d * static_cast<float>(scale), sub = dmin * static_cast<float>(min);
            for (int l = 0; l < 32; ++l) {
                const int q = (qs[32 * p + l] >> (4 * k)) & 15;
                out[64 * p + 32 * k + l] = mul * static_cast<float>(q) - sub;
            }
        }
}

// Q5_K (176 bytes): f16 d, f16 dmin, scales[12], qh[32], qs[128]. As Q4_K, plus a fifth bit for
// element e = 64 p + 32 k + l: bit (2 p + k) of qh[l].
void decode_q5_k_block(const uint8_t* block, float* out) {
    const float d = load_f16(block), dmin = load_f16(block + 2);
    const uint8_t* packed = block + 4;
    const uint8_t* qh = block + 16;
    const uint8_t* qs = block + 48;
    for (int p = 0; p < 4; ++p)
        for (int k = 0; k < 2; ++k) {
            int scale, min;
            unpack_k4_scales(packed, 2 * p + k, scale, min);
            const float mul = d * static_cast<float>(scale), sub = dmin * static_cast<float>(min);
            for (int l = 0; l < 32; ++l) {
                const int q = ((qs[32 * p + l] >> (4 * k)) & 15) | (((qh[l] >> (2 * p + k)) & 1) << 4);
                out[64 * p + 32 * k + l] = mul * static_cast<float>(q) - sub;
            }
        }
}

// Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], f16 d. Element e = 128 h + 32 g + l
// (g 0..3): low 4 bits from the low (g < 2) or high (g >= 2) nibble of ql[64 h + 32 (g % 2) + l],
// top 2 bits from bits 2 g of qh[32 h + l]; sub-block 8 h + 2 g + l / 16; x = d * scale * (q - 32).
void decode_q6_k_block(const uint8_t* block, float* out) {
    const uint8_t* ql = block;
    const uint8_t* qh = block + 128;
    const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
    const float d = load_f16(block + 208);
    for (int h = 0; h < 2; ++h)
        for (int g = 0; g < 4; ++g)
            for (int l = 0; l < 32; ++l) {
                const int low = (ql[64 * h + 32 * (g % 2) + l] >> (4 * (g / 2))) & 15;
                const int high = (qh[32 * h + l] >> (2 * g)) & 3;
                const int q = (low | (high << 4)) - 32;
                out[128 * h + 32 * g + l] = d * static_cast<float>(scales[8 * h + 2 * g + l / 16]) * static_cast<float>(q);
            }
}

}  // namespace kiln::detail
