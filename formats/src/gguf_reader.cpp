// Parsing and validating a GGUF file: header, typed metadata, tensor infos, data section.
// Every count, length and offset is checked against the bytes left in the file before it is used,
// so a corrupt or hostile file gives a file_error, never a huge allocation or an out-of-bounds read.
#include <algorithm>
#include <bit>
#include <cstring>
#include <numeric>
#include <string>

#include "hf_gguf_mapped_file.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"

namespace kiln {
namespace {

constexpr uint32_t gguf_magic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t max_array_depth = 8;      // nested arrays deeper than this are refused (stack safety)
constexpr uint32_t max_dims = 4;             // GGML_MAX_DIMS
// Parsed array items cost ~40 bytes each against 1 on disk for a u8 array, so the total is capped:
// the largest real vocabularies (tokens + scores + types + merges) stay near a million items.
constexpr uint64_t max_array_items = uint64_t(1) << 23;

// Bounds-checked little-endian reads over the mapped file.
class cursor {
public:
    cursor(std::span<const std::byte> bytes, const std::filesystem::path& path) : bytes_(bytes), path_(path) {}

    uint64_t pos() const { return pos_; }
    uint64_t left() const { return bytes_.size() - pos_; }

    void need(uint64_t n, const std::string& what) const {
        if (n > left())
            throw file_error(path_, "truncated: " + what + " at offset " + std::to_string(pos_) + " needs " +
                                        std::to_string(n) + " bytes but only " + std::to_string(left()) + " remain");
    }

    template <class T>
    T read(const std::string& what) {
        need(sizeof(T), what);
        T value;
        std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return value;
    }

    std::string read_string(const std::string& what) {
        const uint64_t length = read<uint64_t>(what + " length");
        need(length, what + " (" + std::to_string(length) + " bytes)");
        std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(length));
        pos_ += length;
        return s;
    }

    // Refuses a count of items that cannot fit in the rest of the file, before anything is reserved.
    void check_count(uint64_t count, uint64_t min_item_bytes, const std::string& what) const {
        if (count > left() / min_item_bytes)
            throw file_error(path_, what + " " + std::to_string(count) + " cannot fit in the " +
                                        std::to_string(left()) + " bytes left at offset " + std::to_string(pos_));
    }

    [[noreturn]] void fail(const std::string& problem) const { throw file_error(path_, problem); }

private:
    std::span<const std::byte> bytes_;
    const std::filesystem::path& path_;
    uint64_t pos_ = 0;
};

// The fewest bytes one value of a kind can take, for the array-count check.
uint64_t min_value_bytes(gguf_type type) {
    switch (type) {
        case gguf_type::u8: case gguf_type::i8: case gguf_type::bool_: return 1;
        case gguf_type::u16: case gguf_type::i16: return 2;
        case gguf_type::u32: case gguf_type::i32: case gguf_type::f32: return 4;
        case gguf_type::string: case gguf_type::u64: case gguf_type::i64: case gguf_type::f64: return 8;
        case gguf_type::array: return 12;  // element type + count
    }
    return 1;
}

bool known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(gguf_type::f64); }

gguf_value read_value(cursor& in, uint32_t type, const std::string& key, uint32_t depth, uint64_t& items_left) {
    if (!known_value_type(type)) in.fail("metadata '" + key + "' has unknown value type " + std::to_string(type));
    gguf_value v;
    switch (static_cast<gguf_type>(type)) {
        case gguf_type::u8: v.value = in.read<uint8_t>(key); break;
        case gguf_type::i8: v.value = in.read<int8_t>(key); break;
        case gguf_type::u16: v.value = in.read<uint16_t>(key); break;
        case gguf_type::i16: v.value = in.read<int16_t>(key); break;
        case gguf_type::u32: v.value = in.read<uint32_t>(key); break;
        case gguf_type::i32: v.value = in.read<int32_t>(key); break;
        case gguf_type::f32: v.value = in.read<float>(key); break;
        case gguf_type::bool_: v.value = in.read<uint8_t>(key) != 0; break;
        case gguf_type::string: v.value = in.read_string(key); break;
        case gguf_type::u64: v.value = in.read<uint64_t>(key); break;
        case gguf_type::i64: v.value = in.read<int64_t>(key); break;
        case gguf_type::f64: v.value = in.read<double>(key); break;
        case gguf_type::array: {
            if (depth >= max_array_depth) in.fail("metadata '" + key + "' nests arrays too deeply");
            const uint32_t element_type = in.read<uint32_t>(key + " element type");
            if (!known_value_type(element_type))
                in.fail("metadata '" + key + "' has unknown array element type " + std::to_string(element_type));
            const uint64_t count = in.read<uint64_t>(key + " element count");
            in.check_count(count, min_value_bytes(static_cast<gguf_type>(element_type)), "metadata '" + key + "' element count");
            if (count > items_left)
                in.fail("metadata '" + key + "' makes the arrays hold more than " + std::to_string(max_array_items) + " items in all");
            items_left -= count;
            gguf_array array;
            array.element_type = static_cast<gguf_type>(element_type);
            array.items.reserve(static_cast<size_t>(count));
            for (uint64_t i = 0; i < count; ++i) array.items.push_back(read_value(in, element_type, key, depth + 1, items_left));
            v.value = std::move(array);
            break;
        }
    }
    return v;
}

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

}  // namespace

gguf_file gguf_file::open(const std::filesystem::path& path) {
    gguf_file file;
    file.path_ = path;
    file.map_ = detail::mapped_file::open(path);
    cursor in(file.map_->bytes(), path);

    if (in.left() < 4 || in.read<uint32_t>("magic") != gguf_magic) in.fail("not a GGUF file (bad magic)");
    file.version_ = in.read<uint32_t>("version");
    if (file.version_ != 2 && file.version_ != 3) {
        const uint32_t swapped = __builtin_bswap32(file.version_);
        in.fail("unsupported GGUF version " + std::to_string(file.version_) +
                (swapped == 2 || swapped == 3 ? " (a big-endian file?)" : "") + "; kiln reads versions 2 and 3");
    }
    const uint64_t tensor_count = in.read<uint64_t>("tensor count");
    const uint64_t metadata_count = in.read<uint64_t>("metadata count");
    // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor info at least
    // 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset).
    in.check_count(metadata_count, 13, "metadata count");
    in.check_count(tensor_count, 32, "tensor count");

    uint64_t items_left = max_array_items;
    for (uint64_t i = 0; i < metadata_count; ++i) {
        std::string key = in.read_string("metadata key " + std::to_string(i));
        const uint32_t type = in.read<uint32_t>("type of metadata '" + key + "'");
        gguf_value value = read_value(in, type, key, 0, items_left);
        if (!file.metadata_.emplace(key, std::move(value)).second) in.fail("metadata key '" + key + "' appears twice");
    }

    if (const gguf_value* alignment = file.find("general.alignment")) {
        if (!alignment->is_integer()) in.fail("general.alignment is not an integer");
        const uint64_t a = alignment->as_u64();
        if (a == 0 || !std::has_single_bit(a) || a > (1u << 30))
            in.fail("general.alignment " + std::to_string(a) + " is not a power of two up to 2^30");
        file.alignment_ = a;
    }

    file.tensors_.reserve(static_cast<size_t>(tensor_count));
    for (uint64_t i = 0; i < tensor_count; ++i) {
        gguf_tensor_info t;
        t.name = in.read_string("tensor name " + std::to_string(i));
        const std::string what = "tensor '" + t.name + "'";
        const uint32_t n_dims = in.read<uint32_t>(what + " n_dims");
        if (n_dims == 0 || n_dims > max_dims) in.fail(what + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
        t.n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t dim = in.read<uint64_t>(what + " dimension");
            if (dim == 0) in.fail(what + " has a zero dimension");
            if (__builtin_mul_overflow(t.n_elements, dim, &t.n_elements) || t.n_elements > (uint64_t{1} << 60))
                in.fail(what + " has too many elements");
            t.dims.push_back(dim);
        }
        t.type = in.read<uint32_t>(what + " type");
        const auto info = ggml_type_lookup(t.type);
        if (!info) in.fail(what + " has unknown tensor type " + std::to_string(t.type));
        if (t.dims[0] % info->block_elems != 0)
            in.fail(what + " rows of " + std::to_string(t.dims[0]) + " elements are not whole " +
                    std::string(info->name) + " blocks");
        // n_elements <= 2^60 and block_bytes / block_elems <= 8, so this cannot overflow.
        t.size = t.n_elements / info->block_elems * info->block_bytes;
        t.offset = in.read<uint64_t>(what + " offset");
        file.tensors_.push_back(std::move(t));
    }

    file.data_offset_ = align_up(in.pos(), file.alignment_);
    const uint64_t file_size = file.map_->size();
    if (!file.tensors_.empty() && file.data_offset_ > file_size)
        in.fail("data section at offset " + std::to_string(file.data_offset_) + " starts past the end of the file");
    const uint64_t data_size = file_size - std::min(file_size, file.data_offset_);

    std::map<std::string_view, size_t> names;
    for (size_t i = 0; i < file.tensors_.size(); ++i) {
        const auto& t = file.tensors_[i];
        if (!names.emplace(t.name, i).second) in.fail("tensor '" + t.name + "' appears twice");
        if (t.offset % file.alignment_ != 0)
            in.fail("tensor '" + t.name + "' offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                    std::to_string(file.alignment_));
        if (t.offset > data_size || t.size > data_size - t.offset)
            in.fail("tensor '" + t.name + "' data (" + std::to_string(t.size) + " bytes at data offset " +
                    std::to_string(t.offset) + ") lies past the end of the file");
    }
    std::vector<size_t> order(file.tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return file.tensors_[a].offset < file.tensors_[b].offset; });
    for (size_t i = 1; i < order.size(); ++i) {
        const auto& prev = file.tensors_[order[i - 1]];
        const auto& next = file.tensors_[order[i]];
        if (prev.offset + prev.size > next.offset)
            in.fail("tensors '" + prev.name + "' and '" + next.name + "' overlap");
    }
    return file;
}

const gguf_value* gguf_file::find(const std::string& key) const {
    auto it = metadata_.find(key);
    return it == metadata_.end() ? nullptr : &it->second;
}

const gguf_tensor_info* gguf_file::find_tensor(const std::string& name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

std::span<const std::byte> gguf_file::tensor_bytes(const gguf_tensor_info& tensor) const {
    return map_->bytes().subspan(static_cast<size_t>(data_offset_ + tensor.offset), static_cast<size_t>(tensor.size));
}

void gguf_file::read_f32(const gguf_tensor_info& tensor, std::span<float> out) const {
    const auto info = ggml_type_lookup(tensor.type);
    if (!info || !info->decodable)
        throw file_error(path_, "tensor '" + tensor.name + "' has type " + std::string(tensor.type_name()) +
                                    ", which kiln cannot decode");
    if (out.size() != tensor.n_elements)
        throw file_error(path_, "tensor '" + tensor.name + "': asked for " + std::to_string(out.size()) +
                                    " values, it has " + std::to_string(tensor.n_elements));
    dequantize_ggml(static_cast<ggml_type>(tensor.type), tensor_bytes(tensor), out);
}

std::string_view gguf_tensor_info::type_name() const {
    const auto info = ggml_type_lookup(type);
    return info ? info->name : std::string_view("unknown");
}

}  // namespace kiln
