// Typed access to metadata values with errors that name the key.
#include "kiln/formats/metadata.hpp"

#include <sstream>

#include "kiln/formats/error.hpp"

namespace kiln {
namespace {

const char* kind_name(size_t index) {
    static const char* names[] = {"u64", "i64", "f64", "bool", "string", "f32 array", "i32 array", "string array"};
    return index < std::size(names) ? names[index] : "?";
}

template <typename T>
const T& typed(const std::map<std::string, meta_value>& values, const std::string& key) {
    auto it = values.find(key);
    if (it == values.end()) throw error("metadata key '" + key + "' is missing");
    if (const T* v = std::get_if<T>(&it->second)) return *v;
    throw error("metadata key '" + key + "' has kind " + kind_name(it->second.index()) + ", expected " +
                kind_name(meta_value(T{}).index()));
}

}  // namespace

uint64_t metadata::get_u64(const std::string& key) const {
    auto it = values_.find(key);
    if (it != values_.end()) {
        if (auto* v = std::get_if<int64_t>(&it->second); v && *v >= 0) return static_cast<uint64_t>(*v);
    }
    return typed<uint64_t>(values_, key);
}
int64_t metadata::get_i64(const std::string& key) const {
    auto it = values_.find(key);
    if (it != values_.end()) {
        if (auto* v = std::get_if<uint64_t>(&it->second); v && *v <= uint64_t(INT64_MAX)) return static_cast<int64_t>(*v);
    }
    return typed<int64_t>(values_, key);
}
double metadata::get_f64(const std::string& key) const {
    auto it = values_.find(key);
    if (it != values_.end()) {
        if (auto* v = std::get_if<uint64_t>(&it->second)) return static_cast<double>(*v);
        if (auto* v = std::get_if<int64_t>(&it->second)) return static_cast<double>(*v);
    }
    return typed<double>(values_, key);
}
bool metadata::get_bool(const std::string& key) const { return typed<bool>(values_, key); }
const std::string& metadata::get_string(const std::string& key) const { return typed<std::string>(values_, key); }
const std::vector<float>& metadata::get_f32_array(const std::string& key) const {
    return typed<std::vector<float>>(values_, key);
}
const std::vector<int32_t>& metadata::get_i32_array(const std::string& key) const {
    return typed<std::vector<int32_t>>(values_, key);
}
const std::vector<std::string>& metadata::get_string_array(const std::string& key) const {
    return typed<std::vector<std::string>>(values_, key);
}

uint64_t metadata::get_u64_or(const std::string& key, uint64_t fallback) const {
    return has(key) ? get_u64(key) : fallback;
}
int64_t metadata::get_i64_or(const std::string& key, int64_t fallback) const {
    return has(key) ? get_i64(key) : fallback;
}
double metadata::get_f64_or(const std::string& key, double fallback) const {
    return has(key) ? get_f64(key) : fallback;
}
bool metadata::get_bool_or(const std::string& key, bool fallback) const {
    return has(key) ? get_bool(key) : fallback;
}
std::string metadata::get_string_or(const std::string& key, const std::string& fallback) const {
    return has(key) ? get_string(key) : fallback;
}

std::string describe(const meta_value& value) {
    std::ostringstream out;
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>) {
                out << '"' << (v.size() > 60 ? v.substr(0, 57) + "..." : v) << '"';
            } else if constexpr (std::is_same_v<T, bool>) {
                out << (v ? "true" : "false");
            } else if constexpr (std::is_arithmetic_v<T>) {
                out << v;
            } else {
                out << "[" << v.size() << " x " << kind_name(meta_value(T{}).index()) << "]";
            }
        },
        value);
    return out.str();
}

}  // namespace kiln
