// Encoding and decoding of the .kiln metadata section.
#include "metadata_codec.hpp"

namespace kiln::detail {
namespace {

constexpr uint32_t max_key_length = 65535;

std::string read_sized_string(byte_reader& in) {
    uint64_t length = in.read<uint64_t>();
    if (length > in.remaining()) in.fail("string of " + std::to_string(length) + " bytes runs past the end");
    return in.read_string(length);
}

meta_value read_value(byte_reader& in, uint32_t tag) {
    switch (tag) {
        case 0: return in.read<uint64_t>();
        case 1: return in.read<int64_t>();
        case 2: return in.read<double>();
        case 3: {
            uint8_t b = in.read<uint8_t>();
            if (b > 1) in.fail("bool value " + std::to_string(b) + " is not 0 or 1");
            return b == 1;
        }
        case 4: return read_sized_string(in);
        case 5: return in.read_array<float>(in.read<uint64_t>());
        case 6: return in.read_array<int32_t>(in.read<uint64_t>());
        case 7: {
            uint64_t count = in.read<uint64_t>();
            // Each string takes at least its 8-byte length: bound the count before reserving.
            if (count > in.remaining() / 8) in.fail("string array of " + std::to_string(count) + " runs past the end");
            std::vector<std::string> strings;
            strings.reserve(count);
            for (uint64_t i = 0; i < count; ++i) strings.push_back(read_sized_string(in));
            return strings;
        }
        default: in.fail("unknown metadata value tag " + std::to_string(tag));
    }
}

}  // namespace

void encode_metadata(const metadata& meta, byte_writer& out) {
    out.put<uint32_t>(static_cast<uint32_t>(meta.values().size()));
    for (const auto& [key, value] : meta.values()) {  // std::map: already in byte order
        out.put<uint32_t>(static_cast<uint32_t>(key.size()));
        out.put_string(key);
        out.put<uint32_t>(static_cast<uint32_t>(value.index()));
        std::visit(
            [&](const auto& v) {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, bool>) {
                    out.put<uint8_t>(v ? 1 : 0);
                } else if constexpr (std::is_arithmetic_v<T>) {
                    out.put(v);
                } else if constexpr (std::is_same_v<T, std::string>) {
                    out.put<uint64_t>(v.size());
                    out.put_string(v);
                } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
                    out.put<uint64_t>(v.size());
                    for (const auto& s : v) {
                        out.put<uint64_t>(s.size());
                        out.put_string(s);
                    }
                } else {
                    out.put<uint64_t>(v.size());
                    out.put_bytes(v.data(), v.size() * sizeof(v[0]));
                }
            },
            value);
    }
}

metadata decode_metadata(byte_reader& in) {
    metadata meta;
    uint32_t count = in.read<uint32_t>();
    std::string previous_key;
    for (uint32_t i = 0; i < count; ++i) {
        uint32_t key_length = in.read<uint32_t>();
        if (key_length == 0 || key_length > max_key_length)
            in.fail("metadata key length " + std::to_string(key_length) + " is out of range");
        std::string key = in.read_string(key_length);
        if (i > 0 && key <= previous_key) in.fail("metadata key '" + key + "' is out of order or repeated");
        uint32_t tag = in.read<uint32_t>();
        meta.set(key, read_value(in, tag));
        previous_key = std::move(key);
    }
    if (in.remaining() != 0) in.fail(std::to_string(in.remaining()) + " unexplained bytes after the last entry");
    return meta;
}

}  // namespace kiln::detail
