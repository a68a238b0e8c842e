// KV cache element types, one position's store/load in the tile layout of attention.hpp, and the
// merge of split-K attention partials. Plain C++ shared by every ISA: these run once per token
// and head (store), in tests (load), or once per row and split (merge).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kiln/kernels/attention.hpp"
#include "kiln/quant/half.hpp"

namespace kiln::kernels {
namespace {

struct tile_ref {
    size_t offset;  // bytes from the start of the run to the position's tile
    size_t col;     // the position's column in the tile
};

tile_ref locate(kv_type type, size_t head_dim, size_t pos) {
    return {pos / kv_tile * kv_tile_bytes(type, head_dim), pos % kv_tile};
}

// Elements [b * kv_block, end) of one position form q8_0 block b.
size_t block_end(size_t head_dim, size_t b) { return std::min(head_dim, (b + 1) * kv_block); }

float q8_scale(const float* x, size_t head_dim, size_t b) {
    float amax = 0.0f;
    for (size_t d = b * kv_block; d < block_end(head_dim, b); ++d) amax = std::fmax(amax, std::fabs(x[d]));
    return amax / 127.0f;
}

int8_t q8_quantize(float x, float scale) {
    if (scale == 0.0f) return 0;
    // fmin/fmax also turn a NaN quotient into a bound instead of an undefined conversion.
    return int8_t(std::fmax(-127.0f, std::fmin(127.0f, std::nearbyint(x / scale))));
}

// The scales sit after the int8 codes as floats; memcpy keeps this independent of the run's
// alignment.
void put_float(unsigned char* p, float v) { std::memcpy(p, &v, sizeof v); }
float get_float(const unsigned char* p) {
    float v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

}  // namespace

std::string_view kv_type_name(kv_type type) {
    switch (type) {
        case kv_type::f32: return "f32";
        case kv_type::f16: return "f16";
        case kv_type::q8_0: return "q8_0";
        case kv_type::bf16: return "bf16";
    }
    return "?";
}

std::optional<kv_type> kv_type_from_name(std::string_view name) {
    for (kv_type type : {kv_type::f32, kv_type::f16, kv_type::bf16, kv_type::q8_0})
        if (kv_type_name(type) == name) return type;
    return std::nullopt;
}

namespace {

// One bf16 element at p (rounded to nearest even). A pair word's low half is its first two bytes
// on the little-endian CPUs kiln runs on.
void put_bf16(unsigned char* p, float v) {
    const uint16_t b = quant::f32_to_bf16(v);
    std::memcpy(p, &b, 2);
}
float get_bf16(const unsigned char* p) {
    uint16_t b;
    std::memcpy(&b, p, 2);
    return quant::bf16_to_f32(b);
}
// Byte offsets in a bf16 tile: key dim d of column j; value dim d of position j.
size_t bf16_key_at(size_t d, size_t j) { return ((d / 2 * kv_tile + j) * 2 + d % 2) * 2; }
size_t bf16_value_at(size_t head_dim, size_t d, size_t j) { return ((j / 2 * head_dim + d) * 2 + j % 2) * 2; }

// One position's key: column j of the transposed tile at kb.
void store_key(kv_type type, size_t head_dim, size_t j, const float* key, unsigned char* kb) {
    switch (type) {
        case kv_type::f32:
            for (size_t d = 0; d < head_dim; ++d) put_float(kb + (d * kv_tile + j) * 4, key[d]);
            return;
        case kv_type::f16:
            for (size_t d = 0; d < head_dim; ++d) {
                const uint16_t k16 = quant::f32_to_f16(key[d]);
                std::memcpy(kb + (d * kv_tile + j) * 2, &k16, 2);
            }
            return;
        case kv_type::bf16:
            for (size_t d = 0; d < head_dim; ++d) put_bf16(kb + bf16_key_at(d, j), key[d]);
            if (head_dim % 2) put_bf16(kb + bf16_key_at(head_dim, j), 0.0f);
            return;
        case kv_type::q8_0: {
            unsigned char* scales = kb + kv_tile * head_dim;
            for (size_t b = 0; b < kv_blocks(head_dim); ++b) {
                const float ks = q8_scale(key, head_dim, b);
                put_float(scales + (b * kv_tile + j) * 4, ks);
                for (size_t d = b * kv_block; d < block_end(head_dim, b); ++d)
                    kb[d * kv_tile + j] = static_cast<unsigned char>(q8_quantize(key[d], ks));
            }
            return;
        }
    }
}

// One position's value: row j of the tile at vb.
void store_value(kv_type type, size_t head_dim, size_t j, const float* value, unsigned char* vb) {
    switch (type) {
        case kv_type::f32:
            for (size_t d = 0; d < head_dim; ++d) put_float(vb + (j * head_dim + d) * 4, value[d]);
            return;
        case kv_type::f16:
            for (size_t d = 0; d < head_dim; ++d) {
                const uint16_t v16 = quant::f32_to_f16(value[d]);
                std::memcpy(vb + (j * head_dim + d) * 2, &v16, 2);
            }
            return;
        case kv_type::bf16:
            for (size_t d = 0; d < head_dim; ++d) put_bf16(vb + bf16_value_at(head_dim, d, j), value[d]);
            return;
        case kv_type::q8_0: {
            const size_t blocks = kv_blocks(head_dim);
            unsigned char* scales = vb + kv_tile * head_dim;
            for (size_t b = 0; b < blocks; ++b) {
                const float vs = q8_scale(value, head_dim, b);
                put_float(scales + (j * blocks + b) * 4, vs);
                for (size_t d = b * kv_block; d < block_end(head_dim, b); ++d)
                    vb[j * head_dim + d] = static_cast<unsigned char>(q8_quantize(value[d], vs));
            }
            return;
        }
    }
}

void load_key(kv_type type, size_t head_dim, size_t j, const unsigned char* kb, float* key) {
    for (size_t d = 0; d < head_dim; ++d) {
        switch (type) {
            case kv_type::f32: key[d] = get_float(kb + (d * kv_tile + j) * 4); break;
            case kv_type::f16: {
                uint16_t k16;
                std::memcpy(&k16, kb + (d * kv_tile + j) * 2, 2);
                key[d] = quant::f16_to_f32(k16);
                break;
            }
            case kv_type::bf16: key[d] = get_bf16(kb + bf16_key_at(d, j)); break;
            case kv_type::q8_0:
                key[d] = float(static_cast<int8_t>(kb[d * kv_tile + j])) *
                         get_float(kb + kv_tile * head_dim + ((d / kv_block) * kv_tile + j) * 4);
                break;
        }
    }
}

void load_value(kv_type type, size_t head_dim, size_t j, const unsigned char* vb, float* value) {
    const size_t blocks = kv_blocks(head_dim);
    for (size_t d = 0; d < head_dim; ++d) {
        switch (type) {
            case kv_type::f32: value[d] = get_float(vb + (j * head_dim + d) * 4); break;
            case kv_type::f16: {
                uint16_t v16;
                std::memcpy(&v16, vb + (j * head_dim + d) * 2, 2);
                value[d] = quant::f16_to_f32(v16);
                break;
            }
            case kv_type::bf16: value[d] = get_bf16(vb + bf16_value_at(head_dim, d, j)); break;
            case kv_type::q8_0:
                value[d] = float(static_cast<int8_t>(vb[j * head_dim + d])) *
                           get_float(vb + kv_tile * head_dim + (j * blocks + d / kv_block) * 4);
                break;
        }
    }
}

}  // namespace

void kv_store(kv_type type, size_t head_dim, size_t pos, const float* key, const float* value, void* keys,
              void* values) {
    const tile_ref at = locate(type, head_dim, pos);
    if (keys) store_key(type, head_dim, at.col, key, static_cast<unsigned char*>(keys) + at.offset);
    if (values) store_value(type, head_dim, at.col, value, static_cast<unsigned char*>(values) + at.offset);
}

void kv_load(kv_type type, size_t head_dim, size_t pos, const void* keys, const void* values, float* key,
             float* value) {
    const tile_ref at = locate(type, head_dim, pos);
    if (keys) load_key(type, head_dim, at.col, static_cast<const unsigned char*>(keys) + at.offset, key);
    if (values) load_value(type, head_dim, at.col, static_cast<const unsigned char*>(values) + at.offset, value);
}

void attention_merge(float& max_a, float& sum_a, float* out_a, float max_b, float sum_b, const float* out_b,
                     size_t head_dim) {
    const float m = std::fmax(max_a, max_b);
    if (m == -std::numeric_limits<float>::infinity()) return;  // neither partial saw a key: a stays (-inf, 0, 0)
    // A partial already at the common max keeps factor 1 without evaluating exp(m - m), which is
    // NaN for m = inf; a partial at -inf (no key) gets exp(-inf) = 0.
    const float fa = max_a == m ? 1.0f : std::exp(max_a - m);
    const float fb = max_b == m ? 1.0f : std::exp(max_b - m);
    for (size_t d = 0; d < head_dim; ++d) out_a[d] = out_a[d] * fa + out_b[d] * fb;
    sum_a = sum_a * fa + sum_b * fb;
    max_a = m;
}

void attention_finish(float sum, float* out, size_t head_dim) {
    if (sum == 0.0f) {
        std::fill(out, out + head_dim, 0.0f);
        return;
    }
    for (size_t d = 0; d < head_dim; ++d) out[d] /= sum;
}

}  // namespace kiln::kernels
