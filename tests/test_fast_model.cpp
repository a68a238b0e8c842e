// The fast forward pass against the f32 reference on the real stories260K model: logits, greedy
// tokens per weight type, thread counts, batched prefill, and quantization quality by KL-divergence.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include "kiln/formats/error.hpp"
#include "kiln/runtime/fast_llama.hpp"
#include "kiln/runtime/generate.hpp"
#include "kiln/runtime/perplexity.hpp"
#include "kiln/runtime/reference_llama.hpp"
#include "kiln/runtime/tokenizer.hpp"
#include "model_fixtures.hpp"

using namespace kiln;

using test::greedy_tokens;
using test::max_abs_diff;
using test::stories_of_type;
using test::text_tokens;

TEST_CASE("fast llama: f32 logits equal the reference within 1e-4 over 64 positions") {
    auto m = model::load(test::converted_stories());
    thread_pool pool(2);
    fast_llama fast(m, pool, {.kv_type = kernels::kv_type::f32});
    reference_llama ref(m);
    const auto tokens = test::stories_reference()["cases"][0]["tokens"].get<std::vector<int32_t>>();
    double worst = 0;
    for (int32_t pos = 0; pos < 64; ++pos) {
        auto a = fast.forward(tokens[size_t(pos)], pos);
        std::vector<float> fast_logits(a.begin(), a.end());
        worst = std::max(worst, max_abs_diff(fast_logits, ref.forward(tokens[size_t(pos)], pos)));
    }
    MESSAGE("max |fast - reference| = " << worst);
    CHECK(worst < 1e-4);
}

TEST_CASE("fast llama: f16 and f32 weights, f16 and f32 KV cache: greedy tokens equal run.c's") {
    const auto reference = test::stories_reference();
    const auto expected = reference["cases"][0]["tokens"].get<std::vector<int32_t>>();
    for (tensor_type type : {tensor_type::f32, tensor_type::f16}) {  // bf16 keeps 8 mantissa bits: it may differ
        auto m = model::load(stories_of_type(type));
        thread_pool pool(2);
        for (kernels::kv_type kv : {kernels::kv_type::f32, kernels::kv_type::f16}) {
            fast_llama fast(m, pool, {.kv_type = kv});
            CHECK_MESSAGE(greedy_tokens(fast, {1}, 200) == expected,
                          type_name(type) << " weights, " << kernels::kv_type_name(kv) << " cache");
        }
    }
}

TEST_CASE("fast llama: one and two threads give identical tokens and logits") {
    for (tensor_type type : {tensor_type::f32, tensor_type::q8_0, tensor_type::q4_0}) {
        auto m = model::load(stories_of_type(type));
        thread_pool one(1), two(2);
        fast_llama a(m, one), b(m, two);
        CHECK(greedy_tokens(a, {1, 403}, 150) == greedy_tokens(b, {1, 403}, 150));
        auto la = a.forward(300, 10);
        std::vector<float> first(la.begin(), la.end());
        CHECK(max_abs_diff(first, b.forward(300, 10)) == 0.0);
    }
}

TEST_CASE("fast llama: batched prefill equals token by token") {
    convert_options all_q8_0;  // the classifier too: the integer GEMM and matvec paths, compared
    all_q8_0.type = tensor_type::q8_0;
    all_q8_0.embedding_type = tensor_type::q8_0;
    auto m = model::load(test::converted_stories(all_q8_0));
    const auto tokens = test::stories_reference()["cases"][0]["tokens"].get<std::vector<int32_t>>();
    const std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + 100);
    thread_pool pool(2);
    fast_llama batched(m, pool, {.context_length = 0, .max_batch = 32, .kv_type = kernels::kv_type::f32});
    fast_llama single(m, pool, {.context_length = 0, .max_batch = 1, .kv_type = kernels::kv_type::f32});
    auto all = batched.forward_batch(prompt, 0, true);
    std::vector<float> batch_logits(all.begin(), all.end());
    double worst = 0;
    for (size_t i = 0; i < prompt.size(); ++i) {
        auto row = single.forward(prompt[i], int32_t(i));
        worst = std::max(worst, max_abs_diff(std::span(batch_logits).subspan(i * 512, 512), row));
    }
    MESSAGE("max |batched - single| = " << worst);
    // The two paths' f32 attention sums can differ in the last bit; q8_0 weights multiply
    // 16-bit activation codes, where such a difference sometimes moves one code by a step of
    // max|x| / 32512, and five layers carry that to ~1e-3 of logits spanning ~20 (measured
    // 1.0e-3; the f32 model gives 9e-6). Greedy tokens must still agree (test_attention_model).
    CHECK(worst < 3e-3);
}

TEST_CASE("perplexity: fast and reference paths agree on the stories text") {
    auto m = model::load(test::converted_stories());
    const auto tokens = text_tokens(*m);
    thread_pool pool(2);
    fast_llama fast(m, pool, {.context_length = 256, .max_batch = 64, .kv_type = kernels::kv_type::f32});
    reference_llama ref(m, 256);
    perplexity_options options;
    options.max_chunks = 40;
    const double fast_ppl = compute_perplexity(fast, tokens, options).ppl;
    const double ref_ppl = compute_perplexity(ref, tokens, options).ppl;
    MESSAGE("PPL fast " << fast_ppl << " reference " << ref_ppl);
    CHECK(std::abs(fast_ppl / ref_ppl - 1) < 1e-4);
    CHECK(fast_ppl > 2.0);  // a plausible model: far better than uniform (512), not degenerate
    CHECK(fast_ppl < 8.0);
}

TEST_CASE("perplexity: quantized stories260K stays within measured KL-divergence bounds") {
    auto base_model = model::load(test::converted_stories());
    const auto tokens = text_tokens(*base_model);
    thread_pool pool(2);
    saved_logprobs base;
    {
        fast_llama lm(base_model, pool, {.context_length = 256, .max_batch = 64, .kv_type = kernels::kv_type::f32});
        perplexity_options options;
        options.save = &base;
        compute_perplexity(lm, tokens, options);
    }
    // KLD bounds sit ~25-50% above the values measured on the whole text (f16: KLD 1e-6, top-1
    // 99.97%; q8_0 (f16 output, int16 activations): 2.4e-4, 99.07%; q4_0 (q8_0 output): 0.071,
    // 86.2%; q4_k falls back to q4_0 on rows of 64). q8_0's top-1 bound is the 99%.
    struct bound {
        tensor_type type;
        double max_kld, min_top1;
    };
    for (bound b : {bound{tensor_type::f16, 1e-5, 0.999}, bound{tensor_type::q8_0, 3.2e-4, 0.99},
                    bound{tensor_type::q4_0, 0.095, 0.84}, bound{tensor_type::q4_k, 0.095, 0.84}}) {
        auto m = model::load(stories_of_type(b.type));
        fast_llama lm(m, pool, {.context_length = 256, .max_batch = 64, .kv_type = kernels::kv_type::f32});
        perplexity_options options;
        options.base = &base;
        auto r = compute_perplexity(lm, tokens, options);
        REQUIRE(r.kld);
        MESSAGE(type_name(b.type) << ": PPL " << r.ppl << " KLD " << r.kld->mean << " p99 " << r.kld->p99 << " top-1 "
                                  << r.kld->top1_agreement);
        CHECK(r.kld->mean < b.max_kld);
        CHECK(r.kld->top1_agreement > b.min_top1);
    }
}

TEST_CASE("perplexity: saved log-probabilities round-trip and refuse another text") {
    test::temp_dir dir;
    saved_logprobs s{3, 8, 42, {-1.0f, -2.0f, -0.5f, -0.1f, -3.0f, -4.0f}};
    s.save(dir / "base.lp");
    auto loaded = saved_logprobs::load(dir / "base.lp");
    CHECK(loaded.vocab == 3);
    CHECK(loaded.positions() == 2);
    CHECK(loaded.logprobs == s.logprobs);
    std::filesystem::resize_file(dir / "base.lp", 40);
    CHECK_THROWS_AS(saved_logprobs::load(dir / "base.lp"), file_error);
}
