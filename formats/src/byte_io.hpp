// Little-endian byte cursor used by the .kiln reader: every read is bounds-checked and a short
// read throws, so a corrupt file can never make the reader touch memory past its section.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/formats/error.hpp"

namespace kiln::detail {

class byte_reader {
public:
    byte_reader(const std::byte* data, uint64_t size, std::string section)
        : data_(data), size_(size), section_(std::move(section)) {}

    uint64_t remaining() const { return size_ - pos_; }
    uint64_t position() const { return pos_; }

    template <typename T>
    T read() {
        T value;
        std::memcpy(&value, take(sizeof(T)), sizeof(T));
        return value;
    }
    std::string read_string(uint64_t length) {
        const std::byte* p = take(length);
        return std::string(reinterpret_cast<const char*>(p), length);
    }
    // Reads `count` elements of T after checking that they fit, so a huge count cannot allocate.
    template <typename T>
    std::vector<T> read_array(uint64_t count) {
        if (count > remaining() / sizeof(T)) fail("array of " + std::to_string(count) + " elements runs past the end");
        std::vector<T> out(count);
        std::memcpy(out.data(), take(count * sizeof(T)), count * sizeof(T));
        return out;
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw error(section_ + " at byte " + std::to_string(pos_) + ": " + what);
    }

private:
    const std::byte* take(uint64_t n) {
        if (n > remaining()) fail("truncated (needs " + std::to_string(n) + " more bytes)");
        const std::byte* p = data_ + pos_;
        pos_ += n;
        return p;
    }
    const std::byte* data_;
    uint64_t size_;
    uint64_t pos_ = 0;
    std::string section_;
};

class byte_writer {
public:
    template <typename T>
    void put(T value) {
        const auto* p = reinterpret_cast<const char*>(&value);
        bytes_.insert(bytes_.end(), p, p + sizeof(T));
    }
    void put_bytes(const void* data, size_t n) {
        const auto* p = static_cast<const char*>(data);
        bytes_.insert(bytes_.end(), p, p + n);
    }
    void put_string(std::string_view s) { put_bytes(s.data(), s.size()); }
    const std::vector<char>& bytes() const { return bytes_; }

private:
    std::vector<char> bytes_;
};

}  // namespace kiln::detail
