// The default batched forward: one token at a time.
#include "kiln/runtime/language_model.hpp"

#include <algorithm>

namespace kiln {

std::span<const float> language_model::forward_batch(std::span<const int32_t> tokens, int32_t pos, bool all_logits) {
    std::span<const float> logits;
    if (all_logits) batch_logits_.resize(tokens.size() * size_t(vocab_size()));
    for (size_t i = 0; i < tokens.size(); ++i) {
        logits = forward(tokens[i], pos + int32_t(i));
        if (all_logits) std::copy(logits.begin(), logits.end(), batch_logits_.begin() + long(i * logits.size()));
    }
    if (all_logits) return batch_logits_;
    return logits;
}

}  // namespace kiln
