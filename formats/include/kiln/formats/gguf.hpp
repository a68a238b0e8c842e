// Reading GGUF files (versions 2 and 3): metadata of every value type, tensor infos and lazily
// decoded tensor data; the tokenizer and the llama/qwen2 importer built on top.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "kiln/formats/gguf_dequant.hpp"
#include "kiln/formats/model_source.hpp"
#include "kiln/formats/vocabulary.hpp"

namespace kiln {

namespace detail {
class mapped_file;
}

// GGUF value kinds, numbered as on disk.
enum class gguf_type : uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, bool_ = 7, string = 8, array = 9,
    u64 = 10, i64 = 11, f64 = 12,
};

struct gguf_value;
struct gguf_array {
    gguf_type element_type = gguf_type::u8;  // kept so that an empty array still has a type
    std::vector<gguf_value> items;
};

// One metadata value. The variant's alternative index equals the gguf_type number.
struct gguf_value {
    std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string, gguf_array,
                 uint64_t, int64_t, double>
        value;

    gguf_type type() const { return static_cast<gguf_type>(value.index()); }
    bool is_integer() const;
    // Conversions: throw kiln::error when the value is of another kind or out of range.
    uint64_t as_u64() const;   // any non-negative integer
    int64_t as_i64() const;    // any integer that fits
    double as_f64() const;     // any integer or float
    bool as_bool() const;
    const std::string& as_string() const;
    const gguf_array& as_array() const;
};

std::string_view gguf_type_name(gguf_type type);

struct gguf_tensor_info {
    std::string name;
    std::vector<uint64_t> dims;  // GGUF order: dims[0] = ne0, the innermost (contiguous) one
    uint32_t type = 0;           // ggml_type number, known to ggml_type_lookup
    uint64_t offset = 0;         // from the start of the data section
    uint64_t size = 0;           // bytes
    uint64_t n_elements = 0;

    // kiln's outermost-first shape: dims reversed (GGUF [64, 512] is the row-major [512][64]).
    std::vector<uint64_t> shape() const { return {dims.rbegin(), dims.rend()}; }
    std::string_view type_name() const;
};

// An open GGUF file. Cheap to copy: copies share the memory map.
class gguf_file {
public:
    // Validates the header, every metadata entry and every tensor info against the file size
    // before using it. Throws kiln::file_error naming the file and the problem.
    static gguf_file open(const std::filesystem::path& path);

    const std::filesystem::path& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }  // from the start of the file
    const std::map<std::string, gguf_value>& metadata() const { return metadata_; }
    const std::vector<gguf_tensor_info>& tensors() const { return tensors_; }

    const gguf_value* find(const std::string& key) const;
    const gguf_tensor_info* find_tensor(const std::string& name) const;

    // Typed metadata access; file_error naming the file and the key when missing or of the wrong kind.
    uint64_t get_u64(const std::string& key) const;
    uint64_t get_u64_or(const std::string& key, uint64_t fallback) const;
    double get_f64_or(const std::string& key, double fallback) const;
    bool get_bool_or(const std::string& key, bool fallback) const;
    std::string get_string(const std::string& key) const;
    std::string get_string_or(const std::string& key, const std::string& fallback) const;
    std::vector<std::string> get_string_array(const std::string& key) const;
    std::vector<float> get_f32_array(const std::string& key) const;
    std::vector<int32_t> get_i32_array(const std::string& key) const;

    // The tensor's raw bytes inside the mapping.
    std::span<const std::byte> tensor_bytes(const gguf_tensor_info& tensor) const;
    // Decodes the tensor to f32 (out.size() must be n_elements); file_error for types kiln
    // cannot decode.
    void read_f32(const gguf_tensor_info& tensor, std::span<float> out) const;

private:
    gguf_file() = default;
    std::filesystem::path path_;
    std::shared_ptr<const detail::mapped_file> map_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::map<std::string, gguf_value> metadata_;
    std::vector<gguf_tensor_info> tensors_;
};

// The tokenizer embedded in tokenizer.ggml.*: "llama" (SentencePiece) becomes "llama-spm",
// "gpt2" becomes "byte-bpe"; tokenizer.chat_template (Jinja) becomes the name of the built-in
// chat template it matches. file_error for other tokenizer models or malformed arrays.
vocabulary vocabulary_from_gguf(const gguf_file& file);

// A llama-family model (general.architecture "llama" or "qwen2") as a model_source. Tensors are
// decoded from the mapped file when the converter asks for them.
model_source load_gguf(const std::filesystem::path& path);

}  // namespace kiln
