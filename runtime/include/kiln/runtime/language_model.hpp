// What generation, perplexity and benchmarks need from any forward-pass implementation.
#pragma once
#include <cstdint>
#include <span>

namespace kiln {

class language_model {
public:
    virtual ~language_model() = default;
    // Feeds `token` at position `pos` (0-based; positions must be fed in order from 0) and returns
    // the logits for the next token, valid until the next call.
    virtual std::span<const float> forward(int32_t token, int32_t pos) = 0;
    // Positions the KV cache holds.
    virtual int32_t context_length() const = 0;
    virtual int32_t vocab_size() const = 0;
};

}  // namespace kiln
