// Helpers for the GGUF and Hugging Face import tests: a byte-level GGUF builder, the stories260K
// llama2.c weights read straight from the .bin, and reading a model_source tensor whole.
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "kiln/formats/model_source.hpp"
#include "test_support.hpp"

namespace kiln::test {

// Appends little-endian GGUF fields; the tests assemble whole files (or broken ones) from it.
struct gguf_bytes {
    std::string out;

    template <class T>
    gguf_bytes& pod(T value) {
        out.append(reinterpret_cast<const char*>(&value), sizeof value);
        return *this;
    }
    gguf_bytes& u32(uint32_t v) { return pod(v); }
    gguf_bytes& u64(uint64_t v) { return pod(v); }
    gguf_bytes& str(const std::string& s) {
        u64(s.size());
        out += s;
        return *this;
    }
    gguf_bytes& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
        out += "GGUF";
        return u32(version).u64(n_tensors).u64(n_kv);
    }
    // A key with a value of GGUF type `type` whose encoding the caller appends next.
    gguf_bytes& key(const std::string& k, uint32_t type) { return str(k).u32(type); }
    gguf_bytes& kv_string(const std::string& k, const std::string& v) { return key(k, 8).str(v); }
    gguf_bytes& kv_u32(const std::string& k, uint32_t v) { return key(k, 4).u32(v); }
    gguf_bytes& kv_f32(const std::string& k, float v) { return key(k, 6).pod(v); }
    gguf_bytes& tensor_info(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset) {
        str(name).u32(uint32_t(dims.size()));
        for (uint64_t d : dims) u64(d);
        return u32(type).u64(offset);
    }
    gguf_bytes& pad_to(uint64_t alignment) {
        while (out.size() % alignment) out += '\0';
        return *this;
    }
    void write(const std::filesystem::path& path) const {
        std::ofstream(path, std::ios::binary).write(out.data(), std::streamsize(out.size()));
    }
};

// One tensor for write_safetensors: its raw little-endian bytes must match dtype x shape.
struct safetensors_entry {
    std::string name;
    std::string dtype;
    std::vector<uint64_t> shape;
    std::string bytes;
};

// A safetensors file with the tensors in the given order, packed back to back.
inline void write_safetensors(const std::filesystem::path& path, const std::vector<safetensors_entry>& tensors) {
    nlohmann::json header = nlohmann::json::object();
    std::string data;
    for (const auto& t : tensors) {
        header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
        data += t.bytes;
    }
    const std::string text = header.dump();
    std::string out(8, '\0');
    const uint64_t n = text.size();
    std::memcpy(out.data(), &n, 8);
    out += text + data;
    std::ofstream(path, std::ios::binary).write(out.data(), std::streamsize(out.size()));
}

// Every tensor of llama2c/stories260K.bin under its kiln name, read directly from the file
// (7 int32 header, then f32 arrays in the order MANIFEST.md gives).
inline std::map<std::string, std::vector<float>> stories_bin_tensors() {
    std::ifstream in(models_dir() / "llama2c" / "stories260K.bin", std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
    int32_t h[7];
    std::memcpy(h, bytes.data(), sizeof h);
    const size_t dim = size_t(h[0]), hidden = size_t(h[1]), layers = size_t(h[2]), heads = size_t(h[3]),
                 kv_heads = size_t(h[4]), vocab = size_t(h[5]);
    const size_t kv_dim = dim / heads * kv_heads;
    size_t pos = 28;
    auto take = [&](size_t n) {
        std::vector<float> v(n);
        std::memcpy(v.data(), bytes.data() + pos, n * 4);
        pos += n * 4;
        return v;
    };
    std::map<std::string, std::vector<float>> t;
    t["token_embd"] = take(vocab * dim);
    auto per_layer = [&](const std::string& name, size_t n) {
        for (size_t l = 0; l < layers; ++l) t["blk." + std::to_string(l) + "." + name] = take(n);
    };
    per_layer("attn_norm", dim);
    per_layer("attn_q", dim * dim);
    per_layer("attn_k", kv_dim * dim);
    per_layer("attn_v", kv_dim * dim);
    per_layer("attn_output", dim * dim);
    per_layer("ffn_norm", dim);
    per_layer("ffn_gate", hidden * dim);
    per_layer("ffn_down", dim * hidden);
    per_layer("ffn_up", hidden * dim);
    t["output_norm"] = take(dim);
    return t;
}

inline uint64_t element_count(const std::vector<uint64_t>& shape) {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    return n;
}

inline std::vector<float> read_all(const source_tensor& t) {
    std::vector<float> values(element_count(t.shape));
    t.read_f32(values);
    return values;
}

inline std::map<std::string, const source_tensor*> by_name(const model_source& source) {
    std::map<std::string, const source_tensor*> m;
    for (const auto& t : source.tensors) m[t.name] = &t;
    return m;
}

// Bitwise equality, so that -0.0 vs 0.0 or NaN payloads would show.
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

}  // namespace kiln::test
