// Attention over a KV cache laid out for the kernels: the cache element types, the tile layout,
// and the tiled online-softmax kernel's arguments (the kernel itself is in kernel_table).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kiln::kernels {

// ---------------------------------------------------------------------------------------------
// KV cache layout. The cache of one (layer, KV head) is a run of tiles of kv_tile positions;
// position p lives in tile p / kv_tile, column p % kv_tile. Keys and values are separate runs of
// kv_tile_bytes(type, head_dim) per tile.
//
// keys, transposed inside a tile so that one query meets kv_tile keys with plain vector FMAs
// (no horizontal sums):
//     f32   float    k[head_dim][kv_tile]
//     f16   uint16   k[head_dim][kv_tile]
//     bf16  uint32   k[pairs][kv_tile]: word = (k[2i], k[2i+1]) of one key, k[2i] in the low
//                    half; pairs = ceil(head_dim / 2), an odd head_dim's last high half is 0
//     q8_0  int8     k[head_dim][kv_tile], then float scale[blocks][kv_tile]
// values, one row per position (the output accumulates whole rows):
//     f32   float    v[kv_tile][head_dim]
//     f16   uint16   v[kv_tile][head_dim]
//     bf16  uint32   v[kv_tile / 2][head_dim]: word = (v_2m[d], v_2m+1[d]) of two positions
//     q8_0  int8     v[kv_tile][head_dim], then float scale[kv_tile][blocks]
// bf16 is stored in pairs because that is what a bf16 dot-product instruction (x86 vdpbf16ps)
// multiplies: a 32-bit lane takes two bf16 of each operand, so keys pair along head_dim (lanes
// are keys) and values pair along positions (lanes are dims); a CPU without it splits the
// words with a shift and a mask.
// q8_0 quantizes each position's head vector in blocks of 32 elements along head_dim (the last
// block may be shorter; blocks = ceil(head_dim / 32)), scale = max|x| / 127, round to nearest even.
// Tiles are padded to 64 bytes. Columns past the last stored position may be read (whole tiles
// are converted at once) but never affect the output; runs need no particular alignment.
// ---------------------------------------------------------------------------------------------
enum class kv_type : uint32_t { f32, f16, q8_0, bf16 };
inline constexpr size_t kv_tile = 32;
inline constexpr size_t kv_block = 32;

std::string_view kv_type_name(kv_type type);
std::optional<kv_type> kv_type_from_name(std::string_view name);

constexpr size_t kv_blocks(size_t head_dim) { return (head_dim + kv_block - 1) / kv_block; }
constexpr size_t kv_tile_bytes(kv_type type, size_t head_dim) {
    const size_t bytes = type == kv_type::f32    ? kv_tile * head_dim * 4
                         : type == kv_type::f16  ? kv_tile * head_dim * 2
                         : type == kv_type::bf16 ? kv_tile * (head_dim + head_dim % 2) * 2
                                                 : kv_tile * head_dim + kv_tile * kv_blocks(head_dim) * 4;
    return (bytes + 63) / 64 * 64;
}
// Bytes of one (layer, KV head) key run (or value run) holding `positions` positions.
constexpr size_t kv_run_bytes(kv_type type, size_t head_dim, size_t positions) {
    return (positions + kv_tile - 1) / kv_tile * kv_tile_bytes(type, head_dim);
}

// Stores one position's key and value (head_dim floats each) into a (layer, KV head) run.
// Plain code, not per ISA: it runs once per token and head. A null run (keys or values) is
// skipped: a latent cache (attention_args::values null) has keys only.
void kv_store(kv_type type, size_t head_dim, size_t pos, const float* key, const float* value, void* keys,
              void* values);
// Reads one position back as floats (tests and the reference); a null run is skipped.
void kv_load(kv_type type, size_t head_dim, size_t pos, const void* keys, const void* values, float* key,
             float* value);

// ---------------------------------------------------------------------------------------------
// One call of the attention kernel: the `group` query heads that share one KV head, for
// n_tokens consecutive tokens, against the keys at positions [key_begin, key_end) of that head.
// Query row (t, g) is at q + t * q_stride + g * head_dim; it may see positions <= first_pos + t
// (causal), so rows see different key counts inside a prefill block.
//
// Values: values == nullptr selects latent attention (MLA): the value of a position is the first
// value_dim elements of its key, read from the key run (no value run exists). Otherwise the value
// run holds head_dim-wide values and value_dim must be 0 or head_dim. Below, vd = value_dim or
// head_dim when value_dim is 0.
//
// Output row (t, g) is at out + t * out_stride + g * vd and row_max/row_sum[t * group + g]:
//   normalize = true:  out = softmax(scale * q k^T) v over the visible keys (a row that sees no
//                      key gets zeros);
//   normalize = false: out = sum_j exp(s_j - m) v_j unnormalised, row_max = m = max_j s_j and
//                      row_sum = sum_j exp(s_j - m) (m = -inf and out = 0 for a row that sees no
//                      key): partial results over disjoint key ranges merge with attention_merge.
// key_begin must be a multiple of kv_tile. scratch: attention_scratch_floats(head_dim) floats.
// row_max/row_sum may be null when normalize is true. out must not overlap q (rows are cleared
// first). Scores beyond float's range saturate to +-FLT_MAX, so finite inputs give finite outputs.
// ---------------------------------------------------------------------------------------------
struct attention_args {
    const float* q;
    size_t q_stride;
    size_t n_tokens, group, head_dim;
    kv_type type;
    const void* keys;
    const void* values;    // nullptr: values are the keys' first value_dim elements (MLA)
    size_t value_dim;      // 0 = head_dim
    size_t key_begin, key_end;
    size_t first_pos;
    float scale;
    bool normalize;
    float* out;
    size_t out_stride;
    float* row_max;
    float* row_sum;
    float* scratch;
};
constexpr size_t attention_scratch_floats(size_t head_dim) { return 2 * kv_tile * head_dim + 128; }

// Whether a table with attention_bf16_products (kernels.hpp) multiplies a call of this shape in
// bf16: bf16 caches with a value run and head_dim a multiple of 8 up to 256; every other call
// multiplies in f32 (a bf16 cache's k and v are exact in f32).
constexpr bool bf16_attention_applies(kv_type type, size_t head_dim, bool latent) {
    return type == kv_type::bf16 && !latent && head_dim % 8 == 0 && head_dim > 0 && head_dim <= 256;
}

// Folds the partial result (max_b, sum_b, out_b) of one row into (max_a, sum_a, out_a), both as
// attention_args::normalize = false writes them.
void attention_merge(float& max_a, float& sum_a, float* out_a, float max_b, float sum_b, const float* out_b,
                     size_t head_dim);
// out /= sum (zeros when sum is 0).
void attention_finish(float sum, float* out, size_t head_dim);

}  // namespace kiln::kernels
