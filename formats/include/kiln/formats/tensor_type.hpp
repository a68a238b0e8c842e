// Weight element types of the .kiln format and their block geometry (see formats/SPEC.md).
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace kiln {

// Values are stored in the file: never renumber. Gaps are reserved for future types.
enum class tensor_type : uint32_t {
    f32 = 0,
    f16 = 1,
    bf16 = 2,
    q8_0 = 8,   // blocks of 32: f16 scale + 32 x int8
    q4_0 = 9,   // blocks of 32: f16 scale + 16 bytes of 4-bit values (offset 8)
    q4_k = 12,  // super-blocks of 256: see SPEC.md
};

struct type_traits {
    std::string_view name;
    uint32_t block_elems;  // elements per block (1 for plain float types)
    uint32_t block_bytes;  // bytes per block
};

// nullopt for a value that is not a known type (a file from the future, or corrupt).
std::optional<tensor_type> tensor_type_from_u32(uint32_t value);
std::optional<tensor_type> tensor_type_from_name(std::string_view name);
const type_traits& traits(tensor_type type);
inline std::string_view type_name(tensor_type type) { return traits(type).name; }

// True when a row of n_cols elements is a whole number of blocks of this type.
inline bool row_fits(tensor_type type, uint64_t n_cols) { return n_cols % traits(type).block_elems == 0; }
// The tensor-table layout a type is stored with (SPEC.md): 1 = grouped rows for q8_0 and q4_0
// (8 blocks' scales, then their codes; see kiln/quant/blocks.hpp), 0 = plain rows otherwise.
inline uint32_t tensor_layout(tensor_type type) {
    return type == tensor_type::q8_0 || type == tensor_type::q4_0 ? 1u : 0u;
}
// Bytes of one row; the caller checks row_fits first.
inline uint64_t row_bytes(tensor_type type, uint64_t n_cols) {
    const auto& t = traits(type);
    return n_cols / t.block_elems * t.block_bytes;
}

}  // namespace kiln
