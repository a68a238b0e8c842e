// Typed key/value metadata of a .kiln file: hyper-parameters, RoPE settings, tokenizer.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace kiln {

// The value kinds the file can hold; the index of each alternative is its tag on disk.
using meta_value = std::variant<uint64_t,                  // 0 u64
                                int64_t,                   // 1 i64
                                double,                    // 2 f64
                                bool,                      // 3 bool
                                std::string,               // 4 string (UTF-8 bytes)
                                std::vector<float>,        // 5 f32 array
                                std::vector<int32_t>,      // 6 i32 array
                                std::vector<std::string>>; // 7 string array

class metadata {
public:
    void set(const std::string& key, meta_value value) { values_[key] = std::move(value); }
    bool has(const std::string& key) const { return values_.count(key) != 0; }
    const std::map<std::string, meta_value>& values() const { return values_; }

    // Typed getters: throw kiln::error naming the key when it is missing or of another kind.
    // get_u64 also accepts a non-negative i64; get_f64 accepts integers.
    uint64_t get_u64(const std::string& key) const;
    int64_t get_i64(const std::string& key) const;
    double get_f64(const std::string& key) const;
    bool get_bool(const std::string& key) const;
    const std::string& get_string(const std::string& key) const;
    const std::vector<float>& get_f32_array(const std::string& key) const;
    const std::vector<int32_t>& get_i32_array(const std::string& key) const;
    const std::vector<std::string>& get_string_array(const std::string& key) const;

    // Same, with a default when the key is absent (a wrong kind still throws).
    uint64_t get_u64_or(const std::string& key, uint64_t fallback) const;
    int64_t get_i64_or(const std::string& key, int64_t fallback) const;
    double get_f64_or(const std::string& key, double fallback) const;
    bool get_bool_or(const std::string& key, bool fallback) const;
    std::string get_string_or(const std::string& key, const std::string& fallback) const;

    bool operator==(const metadata&) const = default;

private:
    std::map<std::string, meta_value> values_;
};

// One short human-readable rendering of a value (arrays summarised), for `kiln inspect`.
std::string describe(const meta_value& value);

}  // namespace kiln
