// Parsing and validating one safetensors file: 8-byte header length, JSON header, data section.
#include "kiln/formats/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "hf_gguf_mapped_file.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf_dequant.hpp"

namespace kiln {
namespace {

std::vector<uint64_t> read_unsigned_array(const nlohmann::json& j, const std::filesystem::path& path,
                                          const std::string& what) {
    if (!j.is_array()) throw file_error(path, what + " is not an array");
    std::vector<uint64_t> out;
    out.reserve(j.size());
    for (const auto& item : j) {
        if (!item.is_number_unsigned()) throw file_error(path, what + " holds something other than a non-negative integer");
        out.push_back(item.get<uint64_t>());
    }
    return out;
}

}  // namespace

uint64_t safetensors_dtype_size(const std::string& dtype) {
    static const std::map<std::string, uint64_t> sizes{
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"U64", 8}, {"I32", 4}, {"U32", 4},
        {"I16", 2}, {"U16", 2}, {"I8", 1}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
    };
    auto it = sizes.find(dtype);
    return it == sizes.end() ? 0 : it->second;
}

uint64_t safetensors_tensor::n_elements() const {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;  // checked for overflow when the header was read
    return n;
}

safetensors_file safetensors_file::open(const std::filesystem::path& path) {
    safetensors_file file;
    file.path_ = path;
    file.map_ = detail::mapped_file::open(path);
    const auto bytes = file.map_->bytes();
    if (bytes.size() < 8) throw file_error(path, "too short for a safetensors header");
    uint64_t header_size;
    std::memcpy(&header_size, bytes.data(), 8);
    if (header_size > bytes.size() - 8)
        throw file_error(path, "header length " + std::to_string(header_size) + " runs past the end of the file (" +
                                   std::to_string(bytes.size()) + " bytes)");
    const char* header = reinterpret_cast<const char*>(bytes.data() + 8);
    const nlohmann::json j = nlohmann::json::parse(header, header + header_size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw file_error(path, "malformed header JSON");
    if (!j.is_object()) throw file_error(path, "header JSON is not an object");

    const uint64_t data_start = 8 + header_size;
    const uint64_t data_size = bytes.size() - data_start;
    for (const auto& [name, value] : j.items()) {
        if (name == "__metadata__") {
            if (!value.is_object()) throw file_error(path, "__metadata__ is not an object");
            for (const auto& [k, v] : value.items())
                if (v.is_string()) file.metadata_[k] = v.get<std::string>();
            continue;
        }
        const std::string what = "tensor '" + name + "'";
        if (!value.is_object()) throw file_error(path, what + " is not an object");
        if (!value.contains("dtype") || !value["dtype"].is_string()) throw file_error(path, what + " has no dtype");
        if (!value.contains("shape")) throw file_error(path, what + " has no shape");
        if (!value.contains("data_offsets")) throw file_error(path, what + " has no data_offsets");
        safetensors_tensor t;
        t.name = name;
        t.dtype = value["dtype"].get<std::string>();
        t.shape = read_unsigned_array(value["shape"], path, what + " shape");
        const auto offsets = read_unsigned_array(value["data_offsets"], path, what + " data_offsets");
        if (offsets.size() != 2) throw file_error(path, what + " data_offsets does not hold two numbers");
        const uint64_t element_size = safetensors_dtype_size(t.dtype);
        if (element_size == 0) throw file_error(path, what + " has unknown dtype '" + t.dtype + "'");
        if (offsets[0] > offsets[1] || offsets[1] > data_size)
            throw file_error(path, what + " data_offsets [" + std::to_string(offsets[0]) + ", " + std::to_string(offsets[1]) +
                                       "] lie outside the " + std::to_string(data_size) + " data bytes");
        uint64_t expected = element_size;
        for (uint64_t d : t.shape)
            if (__builtin_mul_overflow(expected, d, &expected)) throw file_error(path, what + " shape is too large");
        t.offset = data_start + offsets[0];
        t.size = offsets[1] - offsets[0];
        if (t.size != expected)
            throw file_error(path, what + " takes " + std::to_string(t.size) + " bytes but its shape and dtype need " +
                                       std::to_string(expected));
        file.tensors_.emplace(name, std::move(t));
    }

    std::vector<const safetensors_tensor*> by_offset;
    for (const auto& [name, t] : file.tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i)
        if (by_offset[i - 1]->offset + by_offset[i - 1]->size > by_offset[i]->offset)
            throw file_error(path, "tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap");
    return file;
}

const safetensors_tensor* safetensors_file::find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
}

std::span<const std::byte> safetensors_file::tensor_bytes(const safetensors_tensor& tensor) const {
    return map_->bytes().subspan(static_cast<size_t>(tensor.offset), static_cast<size_t>(tensor.size));
}

void safetensors_file::read_f32(const safetensors_tensor& tensor, std::span<float> out) const {
    const uint64_t n = tensor.n_elements();
    if (out.size() != n)
        throw file_error(path_, "tensor '" + tensor.name + "': asked for " + std::to_string(out.size()) +
                                    " values, it has " + std::to_string(n));
    const auto* src = reinterpret_cast<const uint8_t*>(tensor_bytes(tensor).data());
    if (tensor.dtype == "F32") {
        std::memcpy(out.data(), src, n * 4);
    } else if (tensor.dtype == "F16" || tensor.dtype == "BF16") {
        const bool is_bf16 = tensor.dtype == "BF16";
        for (uint64_t i = 0; i < n; ++i) {
            uint16_t v;
            std::memcpy(&v, src + 2 * i, 2);
            out[i] = is_bf16 ? gguf_bf16_to_f32(v) : gguf_f16_to_f32(v);
        }
    } else {
        throw file_error(path_, "tensor '" + tensor.name + "' has dtype " + tensor.dtype +
                                    "; kiln imports F32, F16 and BF16");
    }
}

}  // namespace kiln
