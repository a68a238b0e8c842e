// Picks the next token from logits: greedy, or temperature + top-k + top-p with a portable seeded RNG.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace kiln {

struct sampler_params {
    float temperature = 0.8f;  // 0: greedy argmax (first index on ties)
    int top_k = 40;            // keep the k most likely tokens; 0: off
    float top_p = 0.95f;       // keep the smallest set whose probability reaches top_p; 1: off
    uint64_t seed = 0;
};

class sampler {
public:
    // Scratch space for vocab_size candidates is allocated here, once: sample() never allocates.
    sampler(sampler_params params, size_t vocab_size);

    // One token id. logits.size() must equal the vocab_size given at construction.
    int32_t sample(std::span<const float> logits);

private:
    struct candidate {
        float logit;
        int32_t id;
    };
    uint64_t next_random();     // splitmix64: same sequence on every platform and standard library
    double next_unit_double();  // uniform in [0, 1), 53 random bits

    sampler_params params_;
    size_t vocab_size_;
    uint64_t rng_state_;
    std::vector<candidate> candidates_;
    std::vector<double> probabilities_;
};

// Index of the largest value, the first one on ties.
int32_t argmax(std::span<const float> values);

}  // namespace kiln
