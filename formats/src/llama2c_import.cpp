// Import of llama2.c legacy (version 0) checkpoints: 7 int32 header, then f32 tensors.
#include <cstring>

#include "hf_gguf_mapped_file.hpp"
#include "kiln/formats/error.hpp"
#include "kiln/formats/import.hpp"
#include "kiln/formats/llama2c_tokenizer.hpp"
#include "kiln/formats/model_config.hpp"
#include "kiln/formats/vocabulary.hpp"

namespace kiln {
model_source load_llama2c(const std::filesystem::path& checkpoint, const std::filesystem::path& tokenizer_path) {
    // The mapping is shared with every tensor callback, which reads from it later.
    auto file = detail::mapped_file::open(checkpoint);
    constexpr uint64_t header_bytes = 7 * sizeof(int32_t);
    if (file->size() == 0) throw file_error(checkpoint, "empty file");
    if (file->size() < header_bytes) throw file_error(checkpoint, "truncated llama2.c header");
    int32_t h[7];
    std::memcpy(h, file->bytes().data(), sizeof h);
    const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; ++i)
        if (h[i] == 0 || (h[i] < 0 && i != 5))
            throw file_error(checkpoint, std::string("llama2.c header has impossible ") + names[i] + " " +
                                             std::to_string(h[i]));
    if (h[5] == INT32_MIN) throw file_error(checkpoint, "llama2.c header has impossible vocab_size");

    llama_config config;
    config.dim = uint64_t(h[0]);
    config.hidden_dim = uint64_t(h[1]);
    config.n_layers = uint64_t(h[2]);
    config.n_heads = uint64_t(h[3]);
    config.n_kv_heads = uint64_t(h[4]);
    const bool shared_classifier = h[5] > 0;  // negative: a separate wcls follows the weights
    config.vocab_size = uint64_t(shared_classifier ? h[5] : -int64_t(h[5]));
    config.context_length = uint64_t(h[6]);
    if (config.dim % config.n_heads != 0)
        throw file_error(checkpoint, "llama2.c header: n_heads " + std::to_string(config.n_heads) +
                                         " does not divide dim " + std::to_string(config.dim));
    config.head_dim = config.dim / config.n_heads;
    config.norm_eps = 1e-5;
    config.rope_theta = 10000.0;
    config.rope = rope_style::interleaved;
    try {
        config.validate();
    } catch (const error& e) {
        throw file_error(checkpoint, std::string("llama2.c header: ") + e.what());
    }

    const uint64_t dim = config.dim, hidden = config.hidden_dim, layers = config.n_layers;
    const uint64_t kv_dim = config.kv_dim(), vocab = config.vocab_size;
    const uint64_t head_size = config.head_dim;

    model_source source;
    uint64_t cursor = header_bytes;  // byte offset of the next tensor in the checkpoint
    auto add = [&](const std::string& name, std::vector<uint64_t> shape) {
        uint64_t count = 1;
        for (uint64_t d : shape) count *= d;
        const uint64_t offset = cursor;
        cursor += count * sizeof(float);
        source.tensors.push_back({name, std::move(shape), "f32", [file, offset, count](std::span<float> out) {
                                      std::memcpy(out.data(), file->bytes().data() + offset, count * sizeof(float));
                                  }});
    };
    // llama2.c stores each kind of tensor for all layers together; kiln names them per layer.
    auto add_per_layer = [&](const std::string& suffix, std::vector<uint64_t> shape) {
        for (uint64_t l = 0; l < layers; ++l) add("blk." + std::to_string(l) + "." + suffix, shape);
    };
    add("token_embd", {vocab, dim});
    add_per_layer("attn_norm", {dim});
    add_per_layer("attn_q", {config.q_dim(), dim});
    add_per_layer("attn_k", {kv_dim, dim});
    add_per_layer("attn_v", {kv_dim, dim});
    add_per_layer("attn_output", {dim, config.q_dim()});
    add_per_layer("ffn_norm", {dim});
    add_per_layer("ffn_gate", {hidden, dim});
    add_per_layer("ffn_down", {dim, hidden});
    add_per_layer("ffn_up", {hidden, dim});
    add("output_norm", {dim});
    cursor += 2 * config.context_length * head_size / 2 * sizeof(float);  // legacy RoPE tables, unused
    if (!shared_classifier) add("output", {vocab, dim});
    if (cursor > file->size())
        throw file_error(checkpoint, "truncated: the header's shapes need " + std::to_string(cursor) +
                                         " bytes, the file has " + std::to_string(file->size()));
    if (cursor < file->size())
        throw file_error(checkpoint, "file has " + std::to_string(file->size() - cursor) +
                                         " bytes more than its header's shapes explain");

    config.to_metadata(source.meta);
    source.meta.set("general.source", "llama2.c checkpoint " + checkpoint.filename().string());
    vocabulary vocab_data = load_llama2c_tokenizer(tokenizer_path, vocab);
    vocab_data.to_metadata(source.meta);
    return source;
}

}  // namespace kiln
