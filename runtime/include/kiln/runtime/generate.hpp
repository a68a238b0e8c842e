// The generation loop: feed the prompt, then sample token after token, streaming each one.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "kiln/runtime/language_model.hpp"
#include "kiln/runtime/sampler.hpp"

namespace kiln {

struct generation_stats {
    int32_t prompt_tokens = 0;
    int32_t generated_tokens = 0;
    double prompt_seconds = 0;    // time to process the prompt
    double generate_seconds = 0;  // time for the generated tokens
};

struct generation_request {
    std::vector<int32_t> prompt;        // token ids, BOS included when the model wants it
    int32_t max_new_tokens = 256;
    std::vector<int32_t> stop_tokens;   // generation ends when one of these is sampled (not emitted)
};

// Checks that the prompt plus max_new_tokens fits the model's context before any work: throws
// kiln::error with a clear message otherwise. on_token is called for each new token.
generation_stats generate(language_model& lm, const generation_request& request, sampler& sampler,
                          const std::function<void(int32_t)>& on_token);

}  // namespace kiln
