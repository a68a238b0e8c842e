// RoPE scaling (linear, llama3): the angles against a direct formula, the metadata keys, and that
// the forward passes apply it (reference and fast path agree on a scaled model, and differ from
// the unscaled one).
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "kiln/formats/error.hpp"
#include "kiln/runtime/fast_llama.hpp"
#include "kiln/runtime/reference_llama.hpp"
#include "kiln/runtime/rope.hpp"
#include "model_fixtures.hpp"

using namespace kiln;

namespace {

// Llama 3.1 8B's RoPE: head_dim 128 spans all three llama3 bands (kept, blended, stretched).
llama_config llama31_rope(rope_scaling_type type) {
    llama_config c;
    c.head_dim = 128;
    c.rope_theta = 500000.0;
    c.rope_scaling.type = type;
    c.rope_scaling.factor = 8.0;
    c.rope_scaling.low_freq_factor = 1.0;
    c.rope_scaling.high_freq_factor = 4.0;
    c.rope_scaling.original_context_length = 8192;
    return c;
}

// Hugging Face's _compute_llama3_parameters, written out the way the Python code reads.
double llama3_frequency(double theta, size_t i, size_t head_dim, double factor, double low, double high,
                        double original) {
    const double inv_freq = 1.0 / std::pow(theta, double(2 * i) / double(head_dim));
    const double low_freq_wavelen = original / low, high_freq_wavelen = original / high;
    const double wavelen = 2 * std::numbers::pi / inv_freq;
    double scaled = wavelen > low_freq_wavelen ? inv_freq / factor : inv_freq;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (medium) {
        const double smooth = (original / wavelen - low) / (high - low);
        scaled = (1 - smooth) * scaled / factor + smooth * scaled;
    }
    return scaled;
}

std::vector<float> forward_all(language_model& lm, const std::vector<int32_t>& tokens) {
    std::vector<float> logits;
    for (size_t pos = 0; pos < tokens.size(); ++pos) {
        auto l = lm.forward(tokens[pos], int32_t(pos));
        logits.insert(logits.end(), l.begin(), l.end());
    }
    return logits;
}

}  // namespace

TEST_CASE("rope scaling: llama3 angles equal Hugging Face's formula in all three bands") {
    const llama_config c = llama31_rope(rope_scaling_type::llama3);
    std::vector<float> cos(64), sin(64);
    size_t kept = 0, stretched = 0, blended = 0;
    for (size_t pos : {size_t(0), size_t(1), size_t(17), size_t(8191), size_t(100000)}) {
        rope_angles_for(c, pos, cos.data(), sin.data());
        for (size_t i = 0; i < 64; ++i) {
            const double f = llama3_frequency(500000.0, i, 128, 8.0, 1.0, 4.0, 8192.0);
            CHECK(rope_frequency(c, i) == doctest::Approx(f).epsilon(1e-12));
            CHECK(cos[i] == doctest::Approx(std::cos(double(pos) * f)).epsilon(1e-6));
            CHECK(sin[i] == doctest::Approx(std::sin(double(pos) * f)).epsilon(1e-6));
            if (pos != 1) continue;
            const double base = std::pow(500000.0, -double(2 * i) / 128.0);
            if (f == base) ++kept;
            else if (std::abs(f - base / 8.0) < 1e-18) ++stretched;
            else ++blended;
        }
    }
    CHECK(kept > 0);
    CHECK(stretched > 0);
    CHECK(blended > 0);
}

TEST_CASE("rope scaling: linear divides every position by the factor; none keeps the kernel's angles") {
    llama_config scaled = llama31_rope(rope_scaling_type::linear);
    scaled.rope_scaling.factor = 4.0;
    llama_config plain = llama31_rope(rope_scaling_type::none);
    std::vector<float> cos_scaled(64), sin_scaled(64), cos_plain(64), sin_plain(64);
    for (size_t pos : {size_t(0), size_t(4), size_t(4000)}) {
        rope_angles_for(scaled, pos, cos_scaled.data(), sin_scaled.data());
        rope_angles_for(plain, pos / 4, cos_plain.data(), sin_plain.data());
        for (size_t i = 0; i < 64; ++i) {
            CHECK(cos_scaled[i] == doctest::Approx(cos_plain[i]).epsilon(1e-6));
            CHECK(sin_scaled[i] == doctest::Approx(sin_plain[i]).epsilon(1e-6));
        }
    }
    // Unscaled angles are bit-identical to the kernel helper the fast path used before scaling.
    std::vector<float> cos_kernel(64), sin_kernel(64);
    rope_angles_for(plain, 123, cos_plain.data(), sin_plain.data());
    kernels::rope_angles(123, 128, 500000.0, cos_kernel.data(), sin_kernel.data());
    CHECK(cos_plain == cos_kernel);
    CHECK(sin_plain == sin_kernel);
}

TEST_CASE("rope scaling: llama.rope_scaling.* metadata round trip and bad values") {
    for (rope_scaling_type type : {rope_scaling_type::none, rope_scaling_type::linear, rope_scaling_type::llama3}) {
        llama_config c = llama31_rope(type);
        c.dim = 256, c.hidden_dim = 512, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 2;
        c.vocab_size = 10, c.context_length = 131072;
        if (type == rope_scaling_type::none) c.rope_scaling = {};
        if (type == rope_scaling_type::linear) c.rope_scaling = {.type = type, .factor = 2.0};
        metadata meta;
        c.to_metadata(meta);
        CHECK(meta.has("llama.rope_scaling.type") == (type != rope_scaling_type::none));
        CHECK(meta.has("llama.rope_scaling.low_freq_factor") == (type == rope_scaling_type::llama3));
        CHECK(llama_config::from_metadata(meta).rope_scaling == c.rope_scaling);
    }
    llama_config c = llama31_rope(rope_scaling_type::llama3);
    c.dim = 256, c.hidden_dim = 512, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 2, c.vocab_size = 10;
    c.context_length = 100;
    metadata meta;
    c.to_metadata(meta);
    meta.set("llama.rope_scaling.type", std::string("yarn"));
    CHECK_THROWS_WITH_AS(llama_config::from_metadata(meta), doctest::Contains("unsupported llama.rope_scaling.type 'yarn'"),
                         error);
    meta.set("llama.rope_scaling.type", std::string("llama3"));
    meta.set("llama.rope_scaling.high_freq_factor", 0.5);
    CHECK_THROWS_WITH_AS(llama_config::from_metadata(meta), doctest::Contains("low_freq_factor < high_freq_factor"),
                         error);
}

TEST_CASE("rope scaling: a scaled stories260K changes the reference logits, and the fast path agrees") {
    const auto tokens = test::stories_reference()["cases"][0]["tokens"].get<std::vector<int32_t>>();
    const std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + 24);
    test::temp_dir dir;
    auto unscaled = model::load(test::converted_stories());
    reference_llama unscaled_ref(unscaled);
    const std::vector<float> plain = forward_all(unscaled_ref, prompt);

    for (const char* type : {"linear", "llama3"}) {
        CAPTURE(type);
        model_source source = load_llama2c(test::stories_bin(), test::tok512_bin());
        source.meta.set("llama.rope_scaling.type", std::string(type));
        source.meta.set("llama.rope_scaling.factor", 4.0);
        // stories260K's head_dim 8 has wavelengths 6.3, 63, 628 and 6283: with an original
        // context of 1024 and factors 1 and 4, two pairs are kept, one blended, one stretched.
        source.meta.set("llama.rope_scaling.low_freq_factor", 1.0);
        source.meta.set("llama.rope_scaling.high_freq_factor", 4.0);
        source.meta.set("llama.rope_scaling.original_context_length", uint64_t(1024));
        const auto path = dir / (std::string(type) + ".kiln");
        write_kiln(source, {}, path);
        auto m = model::load(path);
        REQUIRE(m->config().rope_scaling.type != rope_scaling_type::none);

        reference_llama ref(m);
        const std::vector<float> scaled = forward_all(ref, prompt);
        const size_t vocab = m->config().vocab_size;
        // Position 0 rotates by nothing, so only later positions can differ.
        CHECK(test::max_abs_diff(std::span(scaled).first(vocab), std::span(plain).first(vocab)) == 0.0);
        CHECK(test::max_abs_diff(std::span(scaled).subspan(vocab), std::span(plain).subspan(vocab)) > 1e-3);

        thread_pool pool(2);
        fast_llama fast(m, pool, {.kv_type = kernels::kv_type::f32});
        const std::vector<float> fast_logits = forward_all(fast, prompt);
        CHECK(test::max_abs_diff(fast_logits, scaled) < 1e-4);
    }
}
