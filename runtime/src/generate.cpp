// The generation loop and its timing.
#include "kiln/runtime/generate.hpp"

#include <algorithm>
#include <chrono>

#include "kiln/formats/error.hpp"

namespace kiln {

generation_stats generate(language_model& lm, const generation_request& request, sampler& sampler,
                          const std::function<void(int32_t)>& on_token) {
    const auto& prompt = request.prompt;
    if (prompt.empty()) throw error("the prompt is empty (and the model adds no BOS token)");
    if (request.max_new_tokens < 0) throw error("the number of tokens to generate is negative");
    const int64_t needed = int64_t(prompt.size()) + request.max_new_tokens;
    if (int64_t(prompt.size()) > lm.context_length())
        throw error("the prompt has " + std::to_string(prompt.size()) + " tokens, longer than the context of " +
                    std::to_string(lm.context_length()));
    if (needed > lm.context_length())
        throw error("the prompt (" + std::to_string(prompt.size()) + " tokens) plus " +
                    std::to_string(request.max_new_tokens) + " new tokens exceeds the context of " +
                    std::to_string(lm.context_length()) + " (use a shorter prompt or a smaller -n)");

    using clock = std::chrono::steady_clock;
    generation_stats stats;
    stats.prompt_tokens = int32_t(prompt.size());
    auto start = clock::now();
    std::span<const float> logits;
    int32_t pos = 0;
    for (int32_t token : prompt) logits = lm.forward(token, pos++);
    auto prompt_done = clock::now();
    stats.prompt_seconds = std::chrono::duration<double>(prompt_done - start).count();

    for (int32_t i = 0; i < request.max_new_tokens; ++i) {
        const int32_t next = sampler.sample(logits);
        if (std::find(request.stop_tokens.begin(), request.stop_tokens.end(), next) != request.stop_tokens.end()) break;
        on_token(next);
        ++stats.generated_tokens;
        if (i + 1 < request.max_new_tokens) logits = lm.forward(next, pos++);
    }
    stats.generate_seconds = std::chrono::duration<double>(clock::now() - prompt_done).count();
    return stats;
}

}  // namespace kiln
