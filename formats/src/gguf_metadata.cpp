// GGUF metadata values: conversions between the on-disk integer/float kinds, and the typed
// getters of gguf_file that name the file and the key when a value is missing or wrong.
#include <limits>
#include <string>

#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"

namespace kiln {
namespace {

// Any integer alternative widened to a sign and magnitude, so range checks are exact.
struct wide_int {
    bool negative;
    uint64_t magnitude;
};

std::optional<wide_int> as_wide(const gguf_value& v) {
    return std::visit(
        [](const auto& x) -> std::optional<wide_int> {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, bool> || !std::is_integral_v<T>) {
                return std::nullopt;
            } else if constexpr (std::is_signed_v<T>) {
                if (x < 0) return wide_int{true, static_cast<uint64_t>(-(static_cast<int64_t>(x) + 1)) + 1};
                return wide_int{false, static_cast<uint64_t>(x)};
            } else {
                return wide_int{false, static_cast<uint64_t>(x)};
            }
        },
        v.value);
}

}  // namespace

std::string_view gguf_type_name(gguf_type type) {
    switch (type) {
        case gguf_type::u8: return "u8";
        case gguf_type::i8: return "i8";
        case gguf_type::u16: return "u16";
        case gguf_type::i16: return "i16";
        case gguf_type::u32: return "u32";
        case gguf_type::i32: return "i32";
        case gguf_type::f32: return "f32";
        case gguf_type::bool_: return "bool";
        case gguf_type::string: return "string";
        case gguf_type::array: return "array";
        case gguf_type::u64: return "u64";
        case gguf_type::i64: return "i64";
        case gguf_type::f64: return "f64";
    }
    return "unknown";
}

bool gguf_value::is_integer() const { return as_wide(*this).has_value(); }

uint64_t gguf_value::as_u64() const {
    auto w = as_wide(*this);
    if (!w) throw error(std::string("expected an integer, found ") + std::string(gguf_type_name(type())));
    if (w->negative) throw error("expected a non-negative integer, found a negative one");
    return w->magnitude;
}

int64_t gguf_value::as_i64() const {
    auto w = as_wide(*this);
    if (!w) throw error(std::string("expected an integer, found ") + std::string(gguf_type_name(type())));
    constexpr uint64_t max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (!w->negative && w->magnitude > max) throw error("integer does not fit in i64");
    if (w->negative) {
        if (w->magnitude > max + 1) throw error("integer does not fit in i64");
        return w->magnitude == max + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(w->magnitude);
    }
    return static_cast<int64_t>(w->magnitude);
}

double gguf_value::as_f64() const {
    if (auto* f = std::get_if<float>(&value)) return *f;
    if (auto* d = std::get_if<double>(&value)) return *d;
    auto w = as_wide(*this);
    if (!w) throw error(std::string("expected a number, found ") + std::string(gguf_type_name(type())));
    return w->negative ? -static_cast<double>(w->magnitude) : static_cast<double>(w->magnitude);
}

bool gguf_value::as_bool() const {
    if (auto* b = std::get_if<bool>(&value)) return *b;
    throw error(std::string("expected a bool, found ") + std::string(gguf_type_name(type())));
}

const std::string& gguf_value::as_string() const {
    if (auto* s = std::get_if<std::string>(&value)) return *s;
    throw error(std::string("expected a string, found ") + std::string(gguf_type_name(type())));
}

const gguf_array& gguf_value::as_array() const {
    if (auto* a = std::get_if<gguf_array>(&value)) return *a;
    throw error(std::string("expected an array, found ") + std::string(gguf_type_name(type())));
}

namespace {

// Runs a conversion, turning its kiln::error into a file_error naming the file and the key.
template <class F>
auto with_key(const std::filesystem::path& path, const std::string& key, F&& convert) {
    try {
        return convert();
    } catch (const file_error&) {
        throw;
    } catch (const error& e) {
        throw file_error(path, "metadata '" + key + "': " + e.what());
    }
}

}  // namespace

uint64_t gguf_file::get_u64(const std::string& key) const {
    const gguf_value* v = find(key);
    if (!v) throw file_error(path_, "metadata '" + key + "' is missing");
    return with_key(path_, key, [&] { return v->as_u64(); });
}

uint64_t gguf_file::get_u64_or(const std::string& key, uint64_t fallback) const {
    return find(key) ? get_u64(key) : fallback;
}

double gguf_file::get_f64_or(const std::string& key, double fallback) const {
    const gguf_value* v = find(key);
    return v ? with_key(path_, key, [&] { return v->as_f64(); }) : fallback;
}

bool gguf_file::get_bool_or(const std::string& key, bool fallback) const {
    const gguf_value* v = find(key);
    return v ? with_key(path_, key, [&] { return v->as_bool(); }) : fallback;
}

std::string gguf_file::get_string(const std::string& key) const {
    const gguf_value* v = find(key);
    if (!v) throw file_error(path_, "metadata '" + key + "' is missing");
    return with_key(path_, key, [&] { return v->as_string(); });
}

std::string gguf_file::get_string_or(const std::string& key, const std::string& fallback) const {
    return find(key) ? get_string(key) : fallback;
}

std::vector<std::string> gguf_file::get_string_array(const std::string& key) const {
    const gguf_value* v = find(key);
    if (!v) throw file_error(path_, "metadata '" + key + "' is missing");
    return with_key(path_, key, [&] {
        std::vector<std::string> out;
        const auto& array = v->as_array();
        out.reserve(array.items.size());
        for (const auto& item : array.items) out.push_back(item.as_string());
        return out;
    });
}

std::vector<float> gguf_file::get_f32_array(const std::string& key) const {
    const gguf_value* v = find(key);
    if (!v) throw file_error(path_, "metadata '" + key + "' is missing");
    return with_key(path_, key, [&] {
        std::vector<float> out;
        const auto& array = v->as_array();
        out.reserve(array.items.size());
        for (const auto& item : array.items) out.push_back(static_cast<float>(item.as_f64()));
        return out;
    });
}

std::vector<int32_t> gguf_file::get_i32_array(const std::string& key) const {
    const gguf_value* v = find(key);
    if (!v) throw file_error(path_, "metadata '" + key + "' is missing");
    return with_key(path_, key, [&] {
        std::vector<int32_t> out;
        const auto& array = v->as_array();
        out.reserve(array.items.size());
        for (const auto& item : array.items) {
            const int64_t x = item.as_i64();
            if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max())
                throw error("element does not fit in i32");
            out.push_back(static_cast<int32_t>(x));
        }
        return out;
    });
}

}  // namespace kiln
