// Names and block geometry of the weight types.
#include "kiln/formats/tensor_type.hpp"

#include <array>
#include <stdexcept>

namespace kiln {
namespace {

struct type_entry {
    tensor_type type;
    type_traits traits;
};

constexpr std::array<type_entry, 6> type_table{{
    {tensor_type::f32, {"f32", 1, 4}},
    {tensor_type::f16, {"f16", 1, 2}},
    {tensor_type::bf16, {"bf16", 1, 2}},
    {tensor_type::q8_0, {"q8_0", 32, 34}},
    {tensor_type::q4_0, {"q4_0", 32, 18}},
    {tensor_type::q4_k, {"q4_k", 256, 144}},
}};

}  // namespace

std::optional<tensor_type> tensor_type_from_u32(uint32_t value) {
    for (const auto& e : type_table)
        if (static_cast<uint32_t>(e.type) == value) return e.type;
    return std::nullopt;
}

std::optional<tensor_type> tensor_type_from_name(std::string_view name) {
    for (const auto& e : type_table)
        if (e.traits.name == name) return e.type;
    return std::nullopt;
}

const type_traits& traits(tensor_type type) {
    for (const auto& e : type_table)
        if (e.type == type) return e.traits;
    throw std::logic_error("traits: unknown tensor type");
}

}  // namespace kiln
