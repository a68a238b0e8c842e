// Attention and the KV cache on whole models: batched prefill against token-by-token decode, the
// batch size and thread count, decode over long contexts (split attention), the cache's types
// and size, and perplexity against llama.cpp's figure for stories260K.
#include <doctest/doctest.h>

#include "kiln/formats/synthetic.hpp"
#include "kiln/runtime/fast_llama.hpp"
#include "kiln/runtime/perplexity.hpp"
#include "model_fixtures.hpp"

using namespace kiln;
using kernels::kv_type;

namespace {

constexpr kv_type all_kv_types[] = {kv_type::f32, kv_type::f16, kv_type::bf16, kv_type::q8_0};

// A synthetic multi-query model with the head size of real models (64), so the attention kernel
// runs its full-width paths (stories260K's heads have 8 elements).
std::filesystem::path synthetic_mqa() {
    static test::temp_dir dir;
    static const auto path = [] {
        synthetic_preset p = find_synthetic_preset("tiny");
        p.name = "tiny-mqa";
        p.config.dim = 256;
        p.config.n_heads = 4;
        p.config.n_kv_heads = 1;
        p.config.head_dim = 64;
        p.config.hidden_dim = 512;
        p.config.context_length = 2048;
        const auto out = dir / "tiny-mqa.kiln";
        synthetic_options options;
        // f16 weights: int8 activations would turn the last-bit differences of the two paths
        // into whole quantization steps, hiding what this file tests.
        options.type = tensor_type::f16;
        options.seed = 7;
        write_synthetic(p, options, out);
        return out;
    }();
    return path;
}

// Logits of every prompt position, one batch of max_batch tokens at a time.
std::vector<float> batched_logits(std::shared_ptr<const model> m, thread_pool& pool, fast_llama_options o,
                                  const std::vector<int32_t>& prompt) {
    fast_llama lm(std::move(m), pool, o);
    auto all = lm.forward_batch(prompt, 0, true);
    return {all.begin(), all.end()};
}

}  // namespace

TEST_CASE("attention: batched prefill logits equal token-by-token decode, every cache type") {
    thread_pool pool(2);
    const auto text = test::text_tokens(*model::load(test::converted_stories()));
    struct model_case {
        std::string name;
        std::filesystem::path path;
    };
    for (const auto& mc : {model_case{"stories260K", test::stories_of_type(tensor_type::f32)},
                           model_case{"synthetic mqa", synthetic_mqa()}}) {
        auto m = model::load(mc.path);
        // 700 positions: past 512, where decode splits each head's keys between work items.
        std::vector<int32_t> prompt(text.begin(), text.begin() + 700);
        const size_t vocab = m->config().vocab_size;
        for (int32_t& t : prompt) t %= int32_t(vocab);
        for (kv_type kv : all_kv_types) {
            const auto batched = batched_logits(m, pool, {.context_length = 1024, .max_batch = 512, .kv_type = kv}, prompt);
            fast_llama single(m, pool, {.context_length = 1024, .max_batch = 1, .kv_type = kv});
            double worst = 0, scale = 0;
            for (size_t i = 0; i < prompt.size(); ++i) {
                auto row = single.forward(prompt[i], int32_t(i));
                const auto b = std::span<const float>(batched).subspan(i * vocab, vocab);
                worst = std::max(worst, test::max_abs_diff(b, row));
                for (float x : b) scale = std::max(scale, double(std::abs(x)));
            }
            MESSAGE(mc.name << ", " << kernels::kv_type_name(kv) << " cache: max |batched - single| = " << worst
                            << " (logits up to " << scale << ")");
            // The two paths compute K and V with GEMM vs matvec sums that differ in the last bits;
            // with an f32 cache that is all. A rounded f16/q8_0 element may land one step apart,
            // which stories260K's 8-wide heads amplify to ~1e-3 relative (measured: 7e-4). bf16's
            // step is 8x f16's, and a CPU with bf16 products also rounds q to bf16 (measured on
            // stories260K: 1.8e-3 relative with f32 products, 7.9e-3 with bf16 products).
            const double bound = kv == kv_type::f32 ? 1e-4 : kv == kv_type::bf16 ? 1.5e-2 : 3e-3;
            CHECK(worst < bound * std::max(1.0, scale));
        }
    }
}

TEST_CASE("attention: greedy tokens are the same for -b 1 and -b 512 and for -t 1 and -t 2, past 512 positions") {
    const auto text = test::text_tokens(*model::load(test::converted_stories()));
    for (const auto& path : {test::converted_stories(), synthetic_mqa()}) {
        auto m = model::load(path);
        CAPTURE(path.filename().string());
        std::vector<int32_t> prompt(text.begin(), text.begin() + 300);
        for (int32_t& t : prompt) t %= int32_t(m->config().vocab_size);
        thread_pool one(1), two(2);
        fast_llama b512_t1(m, one, {.context_length = 1024, .max_batch = 512});
        fast_llama b1_t1(m, one, {.context_length = 1024, .max_batch = 1});
        fast_llama b512_t2(m, two, {.context_length = 1024, .max_batch = 512});
        // 300 prompt tokens + 400 generated: decode crosses into the split-attention range.
        const auto expected = test::greedy_tokens(b512_t1, prompt, 400);
        CHECK(expected.size() == 700);
        CHECK(test::greedy_tokens(b1_t1, prompt, 400) == expected);
        CHECK(test::greedy_tokens(b512_t2, prompt, 400) == expected);
        // The split of a long decode depends on the length only: threads change nothing, bit for bit.
        auto a = b512_t1.forward(expected.back(), int32_t(expected.size()));
        const std::vector<float> first(a.begin(), a.end());
        CHECK(test::max_abs_diff(first, b512_t2.forward(expected.back(), int32_t(expected.size()))) == 0.0);
    }
}

TEST_CASE("attention: f16, bf16 and q8_0 caches stay within measured KL-divergence of the f32 cache") {
    auto m = model::load(test::converted_stories());
    const auto tokens = test::text_tokens(*m);
    thread_pool pool(2);
    saved_logprobs base;
    perplexity_options options;
    options.n_ctx = 256;
    options.max_chunks = 60;
    {
        fast_llama lm(m, pool, {.context_length = 256, .kv_type = kv_type::f32});
        options.save = &base;
        compute_perplexity(lm, tokens, options);
        options.save = nullptr;
    }
    // Measured on these 60 windows: f16 KLD 1.6e-6, top-1 99.95%; bf16 KLD 1.2e-4, top-1 99.4%
    // (1.1e-4 with f32 products: the storage's rounding dominates); q8_0 KLD 2.1e-3, top-1 97.6%
    // (stories260K's heads have 8 elements: one q8_0 scale per 8 values). Bounds ~2.5x the KLD.
    struct bound {
        kv_type kv;
        double max_kld, min_top1;
    };
    for (bound b : {bound{kv_type::f16, 5e-6, 0.998}, bound{kv_type::bf16, 3e-4, 0.985}, bound{kv_type::q8_0, 5e-3, 0.965}}) {
        fast_llama lm(m, pool, {.context_length = 256, .kv_type = b.kv});
        options.base = &base;
        auto r = compute_perplexity(lm, tokens, options);
        REQUIRE(r.kld);
        MESSAGE(kernels::kv_type_name(b.kv) << " cache: PPL " << r.ppl << " KLD " << r.kld->mean << " p99 " << r.kld->p99
                                            << " top-1 " << r.kld->top1_agreement);
        CHECK(r.kld->mean < b.max_kld);
        CHECK(r.kld->top1_agreement > b.min_top1);
    }
}

TEST_CASE("attention: the KV cache is allocated once at its stated size") {
    auto m = model::load(test::converted_stories());
    const llama_config& c = m->config();
    thread_pool pool(1);
    struct expectation {
        kv_type kv;
        size_t bytes_per_element;
    };
    for (expectation e : {expectation{kv_type::f32, 4}, expectation{kv_type::f16, 2}, expectation{kv_type::bf16, 2}}) {
        fast_llama lm(m, pool, {.context_length = 300, .kv_type = e.kv});
        // Keys and values, per layer and KV head, head_dim elements per position.
        CHECK(lm.cache().bytes_per_position() == 2 * c.n_layers * c.n_kv_heads * c.head_dim * e.bytes_per_element);
        CHECK(lm.cache().context() == 300);
        // Whole tiles of 32 positions: 300 positions take 10 tiles.
        CHECK(lm.cache().bytes() == lm.cache().bytes_per_position() * 320);
    }
    fast_llama q8(m, pool, {.context_length = 64, .kv_type = kv_type::q8_0});
    // head_dim 8: one int8 per element plus one float scale per position and block of 32.
    CHECK(q8.cache().bytes_per_position() == 2 * c.n_layers * c.n_kv_heads * (c.head_dim + 4));
}

TEST_CASE("perplexity: f32 stories260K matches llama.cpp's 4.0779 within 0.5% (512-token windows)") {
    auto m = model::load(test::converted_stories());
    const auto tokens = test::text_tokens(*m);
    thread_pool pool(2);
    fast_llama lm(m, pool, {.context_length = 512, .kv_type = kv_type::f32});
    perplexity_options options;
    options.n_ctx = 512;
    const double ppl = compute_perplexity(lm, tokens, options).ppl;
    MESSAGE("PPL " << ppl << " vs llama.cpp 4.0779");
    CHECK(std::abs(ppl / 4.0779 - 1) < 0.005);
    // The manifest says llama.cpp measured 4.0779 "at context 256", but 256-token windows give
    // 4.1344 here while 512-token windows match it (and its f16 4.0776) to 0.0002: printed, not
    // asserted, until llama.cpp can be run beside kiln to settle which windows it used.
    options.n_ctx = 256;
    MESSAGE("PPL at 256-token windows " << compute_perplexity(lm, tokens, options).ppl);
}

TEST_CASE("cli: run -v states the KV cache, --kv-type picks it, and a bad type is one clear error") {
    test::temp_dir dir;
    const auto model = test::quote(test::converted_stories());
    auto r = test::run_kiln("run -m " + model + " -p 'Once' -n 8 --temp 0 -v --kv-type q8_0 -c 256", dir);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("KV cache q8_0, 256 positions") != std::string::npos);
    CHECK(r.err.find(" MiB") != std::string::npos);
    r = test::run_kiln("run -m " + model + " -p 'Once' -n 8 --temp 0 -v --kv-type bf16 -c 256", dir);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("KV cache bf16, 256 positions") != std::string::npos);
    r = test::run_kiln("run -m " + model + " -p 'Once' -n 8 --kv-type q4", dir);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("kv-type") != std::string::npos);
    // The context is checked before any work: prompt + n beyond -c is refused.
    r = test::run_kiln("run -m " + model + " -p 'Once upon a time' -n 40 -c 32", dir);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("context of 32") != std::string::npos);
}
