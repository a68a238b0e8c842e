// What generation, perplexity and benchmarks need from any forward-pass implementation.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace kiln {

class language_model {
public:
    virtual ~language_model() = default;
    // Feeds `token` at position `pos` (0-based; positions must be fed in order from 0) and returns
    // the logits for the next token, valid until the next call.
    virtual std::span<const float> forward(int32_t token, int32_t pos) = 0;
    // Feeds tokens at positions pos, pos+1, ... and returns the logits of the last one, or of
    // every one (tokens.size() rows of vocab_size) when all_logits. Fast paths process the
    // batch at once; this default feeds one token at a time.
    virtual std::span<const float> forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits);
    // Positions the KV cache holds.
    virtual int32_t context_length() const = 0;
    virtual int32_t vocab_size() const = 0;

private:
    std::vector<float> batch_logits_;  // for the default forward_batch
};

}  // namespace kiln
