// Attention over the KV cache on every ISA: the cache's store/load round trip and byte layout,
// the split-K merge, and the tiled online-softmax kernel against softmax(scale q k^T) v in double
// precision over K and V as kv_load reads them back (so f16/q8_0 rounding of the cache is not
// counted as kernel error, and every cache type gets the same tolerance).
//
// Tolerance of the kernel: |out - ref| <= 1e-5 * mass + 1e-6 per element, mass = sum_j p_j |v_j|
// (the absolute size of the weighted sum): float scores, exp and a running sum over up to 4097
// keys stay a few e-6 of it.
//
// A table with bf16 products (avx512bf16 over an f16 cache) is held to a reference whose q and k
// are rounded to bf16 as the kernel rounds them (a product of two bf16 is exact, so the scores,
// max and sum keep the f32 tolerance), and to 5e-3 * mass for the output: p and v are rounded to
// bf16 too, at most 2^-9 each, 2^-8 per product.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kernels/kernels.hpp"
#include "kiln/quant/half.hpp"
#include "test_util.hpp"

using namespace kiln;
using kernels::kernel_table;
using kernels::kv_type;

namespace {

const kv_type all_types[] = {kv_type::f32, kv_type::f16, kv_type::bf16, kv_type::q8_0};
constexpr float neg_inf = -std::numeric_limits<float>::infinity();
constexpr double out_rel_tol = 1e-5, out_abs_tol = 1e-6, bf16_out_rel_tol = 5e-3;

float round_bf16(float x) { return quant::bf16_to_f32(quant::f32_to_bf16(x)); }

// Whether `table` multiplies this call's q.k and p.v in bf16, and the output tolerance it gets.
bool bf16_products(const kernel_table& table, kv_type type, size_t head_dim) {
    return table.attention_bf16_products && kernels::bf16_attention_applies(type, head_dim, false);
}
double rel_tol(const kernel_table& table, kv_type type, size_t head_dim) {
    return bf16_products(table, type, head_dim) ? bf16_out_rel_tol : out_rel_tol;
}

// A 64-byte aligned byte buffer (SIMD kernels may load tiles aligned).
struct aligned_bytes {
    std::vector<unsigned char> storage;
    size_t offset;
    aligned_bytes(size_t n, unsigned char fill) : storage(n + 64, fill) {
        offset = (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64;
    }
    unsigned char* data() { return storage.data() + offset; }
    const unsigned char* data() const { return storage.data() + offset; }
};

// One (layer, KV head) cache of `length` positions, plus K and V as kv_load reads them back.
// The runs start as 0xff bytes, NaN in every type, so a kernel that lets a column past the last
// stored position reach its output shows NaN.
struct cache {
    kv_type type;
    size_t head_dim, length;
    aligned_bytes keys, values;
    std::vector<float> k, v;  // length x head_dim

    cache(kv_type t, size_t hd, size_t n, const std::vector<float>& key_src, const std::vector<float>& value_src)
        : type(t), head_dim(hd), length(n), keys(kernels::kv_run_bytes(t, hd, n), 0xff),
          values(kernels::kv_run_bytes(t, hd, n), 0xff), k(n * hd), v(n * hd) {
        for (size_t p = 0; p < n; ++p)
            kernels::kv_store(t, hd, p, &key_src[p * hd], &value_src[p * hd], keys.data(), values.data());
        for (size_t p = 0; p < n; ++p)
            kernels::kv_load(t, hd, p, keys.data(), values.data(), &k[p * hd], &v[p * hd]);
    }
};

cache random_cache(kv_type t, size_t hd, size_t n, uint32_t seed) {
    return cache(t, hd, n, test::gaussian(n * hd, seed), test::gaussian(n * hd, seed + 1));
}

// Which rows, against which keys. Query row (t, g) is at q + t * q_stride + g * head_dim.
struct call {
    size_t n_tokens, group, first_pos, key_begin, key_end;
    float scale;
};

// Per row: the normalised output, its mass (see the top), and max/sum of the scores as
// normalize = false defines them.
struct reference {
    std::vector<double> out, mass, max, sum;
};

// bf16: q and k rounded to bf16 in the scores, as a table with bf16 products does.
reference attend(const cache& c, const float* q, size_t q_stride, const call& a, bool bf16 = false) {
    const size_t hd = c.head_dim, rows = a.n_tokens * a.group;
    reference ref{std::vector<double>(rows * hd), std::vector<double>(rows * hd),
                  std::vector<double>(rows, -std::numeric_limits<double>::infinity()), std::vector<double>(rows)};
    std::vector<double> s;
    for (size_t t = 0; t < a.n_tokens; ++t)
        for (size_t g = 0; g < a.group; ++g) {
            const size_t r = t * a.group + g;
            const float* qr = q + t * q_stride + g * hd;
            const size_t end = std::min(a.key_end, a.first_pos + t + 1);
            if (end <= a.key_begin) continue;
            s.assign(end - a.key_begin, 0.0);
            for (size_t p = a.key_begin; p < end; ++p) {
                double dot = 0;
                for (size_t d = 0; d < hd; ++d)
                    dot += bf16 ? double(round_bf16(qr[d])) * round_bf16(c.k[p * hd + d]) : double(qr[d]) * c.k[p * hd + d];
                s[p - a.key_begin] = double(a.scale) * dot;
            }
            const double m = *std::max_element(s.begin(), s.end());
            double sum = 0;
            for (size_t p = a.key_begin; p < end; ++p) {
                const double w = std::exp(s[p - a.key_begin] - m);
                sum += w;
                for (size_t d = 0; d < hd; ++d) {
                    ref.out[r * hd + d] += w * c.v[p * hd + d];
                    ref.mass[r * hd + d] += w * std::fabs(c.v[p * hd + d]);
                }
            }
            for (size_t d = 0; d < hd; ++d) ref.out[r * hd + d] /= sum, ref.mass[r * hd + d] /= sum;
            ref.max[r] = m;
            ref.sum[r] = sum;
        }
    return ref;
}

// The kernel's output rows, out_stride apart with a sentinel-filled gap after each row's heads.
struct result {
    size_t stride;
    std::vector<float> out, row_max, row_sum;
};
constexpr float sentinel = 12345.0f;

result run(const kernel_table& table, const cache& c, const float* q, size_t q_stride, const call& a,
           bool normalize) {
    const size_t hd = c.head_dim, rows = a.n_tokens * a.group;
    result res{a.group * hd + 5, {}, std::vector<float>(rows, sentinel), std::vector<float>(rows, sentinel)};
    res.out.assign(std::max<size_t>(a.n_tokens, 1) * res.stride, sentinel);
    for (size_t t = 0; t < a.n_tokens; ++t)  // NaN where the kernel must write: no reads before writes
        std::fill_n(res.out.begin() + t * res.stride, a.group * hd, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> scratch(kernels::attention_scratch_floats(hd), std::numeric_limits<float>::quiet_NaN());
    const kernels::attention_args args{q, q_stride, a.n_tokens, a.group, hd, c.type, c.keys.data(), c.values.data(),
                                       0, a.key_begin, a.key_end, a.first_pos, a.scale, normalize, res.out.data(),
                                       res.stride, normalize ? nullptr : res.row_max.data(),
                                       normalize ? nullptr : res.row_sum.data(), scratch.data()};
    table.attention(args);
    for (size_t t = 0; t < a.n_tokens; ++t)
        for (size_t i = a.group * hd; i < res.stride; ++i) REQUIRE(res.out[t * res.stride + i] == sentinel);
    return res;
}

// Worst |got - ref| / (rel_tol * mass + out_abs_tol) over all rows: <= 1 passes.
// `divide_by_sum`: the kernel's rows are unnormalised (normalize = false).
double worst_error(const result& res, const reference& ref, size_t n_tokens, size_t group, size_t hd,
                   bool divide_by_sum, double rel_tol) {
    double worst = 0;
    for (size_t t = 0; t < n_tokens; ++t)
        for (size_t g = 0; g < group; ++g) {
            const size_t r = t * group + g;
            const double div = divide_by_sum && res.row_sum[r] > 0 ? res.row_sum[r] : 1.0;
            for (size_t d = 0; d < hd; ++d) {
                const double got = res.out[t * res.stride + g * hd + d];
                if (!std::isfinite(got)) return std::numeric_limits<double>::infinity();
                const double err = std::fabs(got / div - ref.out[r * hd + d]);
                worst = std::max(worst, err / (rel_tol * ref.mass[r * hd + d] + out_abs_tol));
            }
        }
    return worst;
}

std::vector<float> queries(size_t n_tokens, size_t q_stride, uint32_t seed, float sigma) {
    return test::gaussian(n_tokens * q_stride, seed, sigma);
}

// Both output modes of one call on every ISA against the reference: normalised rows, and
// unnormalised rows with max/sum (max within float rounding of the scores, sum at that max).
void check_all_isas(const cache& c, const float* q, size_t q_stride, const call& a) {
    const reference exact = attend(c, q, q_stride, a), rounded = attend(c, q, q_stride, a, true);
    const size_t rows = a.n_tokens * a.group;
    for (const kernel_table* table : kernels::available()) {
        CAPTURE(std::string(table->isa));
        const reference& ref = bf16_products(*table, c.type, c.head_dim) ? rounded : exact;
        const double tol = rel_tol(*table, c.type, c.head_dim);
        const result norm = run(*table, c, q, q_stride, a, true);
        CHECK(worst_error(norm, ref, a.n_tokens, a.group, c.head_dim, false, tol) <= 1.0);

        const result part = run(*table, c, q, q_stride, a, false);
        CHECK(worst_error(part, ref, a.n_tokens, a.group, c.head_dim, true, tol) <= 1.0);
        for (size_t r = 0; r < rows; ++r) {
            CAPTURE(r);
            if (ref.sum[r] == 0) {
                CHECK(part.row_max[r] == neg_inf);
                CHECK(part.row_sum[r] == 0.0f);
                continue;
            }
            REQUIRE(std::isfinite(part.row_max[r]));
            CHECK(test::close(part.row_max[r], ref.max[r], 1e-5, 1e-5));
            // The kernel's sum is taken at its own max.
            CHECK(test::close(part.row_sum[r], ref.sum[r] * std::exp(ref.max[r] - double(part.row_max[r])), 1e-5, 0));
        }
    }
}

}  // namespace

TEST_CASE("attention cache: kv type names round-trip") {
    for (kv_type t : all_types) CHECK(kernels::kv_type_from_name(kernels::kv_type_name(t)) == t);
    CHECK(kernels::kv_type_name(kv_type::f32) == "f32");
    CHECK(kernels::kv_type_name(kv_type::f16) == "f16");
    CHECK(kernels::kv_type_name(kv_type::q8_0) == "q8_0");
    CHECK(kernels::kv_type_name(kv_type::bf16) == "bf16");
    CHECK(!kernels::kv_type_from_name("q4_0").has_value());
    CHECK(!kernels::kv_type_from_name("").has_value());
}

TEST_CASE("attention cache: kv_store/kv_load round trip (f32 exact, f16/bf16 rounded, q8_0 within half a step)") {
    constexpr size_t n = 70;  // three tiles, the last partial
    for (size_t hd : {7u, 8u, 64u, 80u, 128u}) {
        for (kv_type t : all_types) {
            CAPTURE(hd);
            CAPTURE(std::string(kernels::kv_type_name(t)));
            auto key = test::gaussian(n * hd, 20, 2.0f), value = test::gaussian(n * hd, 21, 0.5f);
            for (size_t d = 0; d < hd; ++d) key[33 * hd + d] = value[33 * hd + d] = 0.0f;  // q8_0 scale 0
            key[40 * hd + hd - 1] = 300.0f;  // one outlier in the last (for hd 80: short) block
            aligned_bytes keys(kernels::kv_run_bytes(t, hd, n), 0xff), values(kernels::kv_run_bytes(t, hd, n), 0xff);
            // Out of order, so a store that clobbered its neighbours would show.
            for (size_t i = 0; i < n; ++i) {
                const size_t p = i * 29 % n;
                kernels::kv_store(t, hd, p, &key[p * hd], &value[p * hd], keys.data(), values.data());
            }
            std::vector<float> k(hd), v(hd);
            for (size_t p = 0; p < n; ++p) {
                CAPTURE(p);
                kernels::kv_load(t, hd, p, keys.data(), values.data(), k.data(), v.data());
                for (size_t d = 0; d < hd; ++d) {
                    const float x = key[p * hd + d], y = value[p * hd + d];
                    if (t == kv_type::f32) {
                        REQUIRE(k[d] == x);
                        REQUIRE(v[d] == y);
                    } else if (t == kv_type::f16) {
                        REQUIRE(k[d] == quant::f16_to_f32(quant::f32_to_f16(x)));
                        REQUIRE(v[d] == quant::f16_to_f32(quant::f32_to_f16(y)));
                    } else if (t == kv_type::bf16) {
                        REQUIRE(k[d] == round_bf16(x));
                        REQUIRE(v[d] == round_bf16(y));
                    } else {
                        const size_t b0 = d / 32 * 32, b1 = std::min(hd, b0 + 32);
                        float kmax = 0, vmax = 0;
                        for (size_t i = b0; i < b1; ++i) {
                            kmax = std::max(kmax, std::fabs(key[p * hd + i]));
                            vmax = std::max(vmax, std::fabs(value[p * hd + i]));
                        }
                        // Half a quantization step of the block, with float slack.
                        REQUIRE(std::fabs(k[d] - x) <= kmax / 127 * 0.5f * 1.0001f);
                        REQUIRE(std::fabs(v[d] - y) <= vmax / 127 * 0.5f * 1.0001f);
                        if (kmax == 0) REQUIRE(k[d] == 0.0f);
                    }
                }
            }
        }
    }
}

TEST_CASE("attention cache: tile layout is the one attention.hpp documents") {
    const size_t hd = 80, pos = 37, tile = 1, col = 5, blocks = 3;  // 80 = 32 + 32 + 16
    std::vector<float> key(hd), value(hd);
    for (size_t d = 0; d < hd; ++d) key[d] = float(d) - 40.0f, value[d] = 0.5f * float(d) + 1.0f;
    for (kv_type t : all_types) {
        CAPTURE(std::string(kernels::kv_type_name(t)));
        const size_t tb = kernels::kv_tile_bytes(t, hd);
        CHECK(tb % 64 == 0);
        aligned_bytes keys(kernels::kv_run_bytes(t, hd, 64), 0), values(kernels::kv_run_bytes(t, hd, 64), 0);
        kernels::kv_store(t, hd, pos, key.data(), value.data(), keys.data(), values.data());
        const unsigned char* kt = keys.data() + tile * tb;
        const unsigned char* vt = values.data() + tile * tb;
        for (size_t d = 0; d < hd; ++d) {
            CAPTURE(d);
            if (t == kv_type::f32) {
                float k, v;
                std::memcpy(&k, kt + (d * 32 + col) * 4, 4);   // k[head_dim][kv_tile]
                std::memcpy(&v, vt + (col * hd + d) * 4, 4);   // v[kv_tile][head_dim]
                CHECK(k == key[d]);
                CHECK(v == value[d]);
            } else if (t == kv_type::f16) {
                uint16_t k, v;
                std::memcpy(&k, kt + (d * 32 + col) * 2, 2);
                std::memcpy(&v, vt + (col * hd + d) * 2, 2);
                CHECK(k == quant::f32_to_f16(key[d]));
                CHECK(v == quant::f32_to_f16(value[d]));
            } else if (t == kv_type::bf16) {
                uint32_t kw, vw;  // k words [hd / 2][kv_tile], v words [kv_tile / 2][hd]; col 5 is odd
                std::memcpy(&kw, kt + (d / 2 * 32 + col) * 4, 4);
                std::memcpy(&vw, vt + (col / 2 * hd + d) * 4, 4);
                CHECK(uint16_t(d % 2 ? kw >> 16 : kw) == quant::f32_to_bf16(key[d]));
                CHECK(uint16_t(vw >> 16) == quant::f32_to_bf16(value[d]));
            } else {
                float ks, vs;  // scale[blocks][kv_tile] and scale[kv_tile][blocks] after the codes
                std::memcpy(&ks, kt + 32 * hd + (d / 32 * 32 + col) * 4, 4);
                std::memcpy(&vs, vt + 32 * hd + (col * blocks + d / 32) * 4, 4);
                const auto kq = static_cast<int8_t>(kt[d * 32 + col]);
                const auto vq = static_cast<int8_t>(vt[col * hd + d]);
                CHECK(std::fabs(float(kq) * ks - key[d]) <= ks / 2);
                CHECK(std::fabs(float(vq) * vs - value[d]) <= vs / 2);
            }
        }
    }
}

TEST_CASE("attention_merge and attention_finish handle partials that saw no key") {
    const size_t hd = 4;
    const float x[hd] = {1, -2, 3, 0.5f};
    float m = neg_inf, s = 0, out[hd] = {0, 0, 0, 0};
    const float zero[hd] = {0, 0, 0, 0};
    kernels::attention_merge(m, s, out, neg_inf, 0.0f, zero, hd);  // empty + empty
    CHECK(m == neg_inf);
    CHECK(s == 0.0f);
    for (float o : out) CHECK(o == 0.0f);
    kernels::attention_finish(s, out, hd);
    for (float o : out) CHECK(o == 0.0f);

    kernels::attention_merge(m, s, out, 2.0f, 3.0f, x, hd);  // empty + b = b exactly
    CHECK(m == 2.0f);
    CHECK(s == 3.0f);
    for (size_t d = 0; d < hd; ++d) CHECK(out[d] == x[d]);
    kernels::attention_merge(m, s, out, neg_inf, 0.0f, zero, hd);  // a + empty = a
    CHECK(m == 2.0f);
    CHECK(s == 3.0f);
    for (size_t d = 0; d < hd; ++d) CHECK(out[d] == x[d]);

    kernels::attention_merge(m, s, out, 3.5f, 0.25f, zero, hd);  // rescale a to the larger max
    CHECK(m == 3.5f);
    CHECK(s == doctest::Approx(3.0 * std::exp(-1.5) + 0.25).epsilon(1e-6));
    for (size_t d = 0; d < hd; ++d) CHECK(out[d] == doctest::Approx(x[d] * std::exp(-1.5)).epsilon(1e-6));
    kernels::attention_finish(s, out, hd);
    for (size_t d = 0; d < hd; ++d)
        CHECK(out[d] == doctest::Approx(x[d] * std::exp(-1.5) / (3.0 * std::exp(-1.5) + 0.25)).epsilon(1e-6));

    // Equal saturated maxima must not meet exp(inf - inf).
    const float big = std::numeric_limits<float>::max();
    float m2 = big, s2 = 1, o2[hd] = {1, 1, 1, 1};
    kernels::attention_merge(m2, s2, o2, big, 1.0f, x, hd);
    CHECK(m2 == big);
    CHECK(s2 == 2.0f);
    for (size_t d = 0; d < hd; ++d) CHECK(o2[d] == 1.0f + x[d]);
}

TEST_CASE("attention decode: one token against the whole cache") {
    const size_t dims[] = {8, 64, 80, 128}, groups[] = {1, 2, 4, 8};
    uint32_t seed = 100;
    for (kv_type t : all_types) {
        const size_t lengths[] = {1, 3, 31, 32, 33, 255};
        for (size_t li = 0; li < std::size(lengths); ++li)
            for (size_t di = 0; di < std::size(dims); ++di) {
                const size_t len = lengths[li], hd = dims[di], group = groups[(li + di) % 4];
                CAPTURE(std::string(kernels::kv_type_name(t)));
                CAPTURE(len);
                CAPTURE(hd);
                CAPTURE(group);
                const cache c = random_cache(t, hd, len, seed += 2);
                // Sharper attention every other case: scores with a spread of ~4 instead of ~1.
                const float sigma = (li + di) % 2 ? 4.0f : 1.0f;
                const size_t q_stride = group * hd + 3;
                const auto q = queries(1, q_stride, seed + 7, sigma);
                check_all_isas(c, q.data(), q_stride, {1, group, len - 1, 0, len, 1.0f / std::sqrt(float(hd))});
            }
    }
    // Long contexts, mostly f16 (the default cache type).
    struct long_case {
        kv_type type;
        size_t len, hd, group;
    };
    for (const long_case& lc : {long_case{kv_type::f16, 1000, 64, 8}, long_case{kv_type::f16, 4097, 64, 8},
                                long_case{kv_type::bf16, 4097, 64, 8}, long_case{kv_type::bf16, 1000, 72, 4},
                                long_case{kv_type::f16, 4097, 128, 4}, long_case{kv_type::f32, 1000, 80, 2},
                                long_case{kv_type::q8_0, 1000, 128, 1}, long_case{kv_type::q8_0, 4097, 8, 8}}) {
        CAPTURE(std::string(kernels::kv_type_name(lc.type)));
        CAPTURE(lc.len);
        CAPTURE(lc.hd);
        CAPTURE(lc.group);
        const cache c = random_cache(lc.type, lc.hd, lc.len, seed += 2);
        const auto q = queries(1, lc.group * lc.hd, seed + 7, 2.0f);
        check_all_isas(c, q.data(), lc.group * lc.hd,
                       {1, lc.group, lc.len - 1, 0, lc.len, 1.0f / std::sqrt(float(lc.hd))});
    }
}

TEST_CASE("attention prefill: a block of tokens with the causal mask inside it") {
    struct prefill_case {
        kv_type type;
        size_t hd, group, n_tokens, first_pos, future;  // future: stored positions past the block
    };
    uint32_t seed = 300;
    for (const prefill_case& pc :
         {prefill_case{kv_type::f32, 64, 1, 40, 0, 0}, prefill_case{kv_type::f16, 80, 2, 17, 57, 0},
          prefill_case{kv_type::q8_0, 128, 4, 40, 100, 20}, prefill_case{kv_type::f16, 8, 8, 33, 31, 0},
          prefill_case{kv_type::q8_0, 8, 8, 40, 0, 7}, prefill_case{kv_type::f32, 80, 8, 5, 250, 40},
          prefill_case{kv_type::f16, 64, 4, 40, 990, 0}, prefill_case{kv_type::bf16, 64, 8, 40, 70, 9},
          prefill_case{kv_type::bf16, 24, 3, 37, 0, 0}}) {
        CAPTURE(std::string(kernels::kv_type_name(pc.type)));
        CAPTURE(pc.hd);
        CAPTURE(pc.group);
        CAPTURE(pc.n_tokens);
        CAPTURE(pc.first_pos);
        // Positions past the block are stored too (a cache reused after a rollback): only the
        // causal mask keeps them out.
        const size_t len = pc.first_pos + pc.n_tokens + pc.future;
        const cache c = random_cache(pc.type, pc.hd, len, seed += 2);
        const size_t q_stride = pc.group * pc.hd;
        const auto q = queries(pc.n_tokens, q_stride, seed + 7, 2.0f);
        check_all_isas(c, q.data(), q_stride,
                       {pc.n_tokens, pc.group, pc.first_pos, 0, len, 1.0f / std::sqrt(float(pc.hd))});
    }
}

TEST_CASE("attention rows that see no key: -inf max, zero sum, zero output") {
    const cache c = random_cache(kv_type::f16, 64, 128, 400);
    const auto q = queries(20, 2 * 64, 401, 1.0f);
    const float scale = 0.125f;
    // Every row before the range; an empty range; and a block whose first 12 rows precede it.
    for (const call& a : {call{3, 2, 10, 64, 128, scale}, call{4, 2, 100, 64, 64, scale},
                          call{20, 2, 20, 32, 64, scale}}) {
        CAPTURE(a.first_pos);
        CAPTURE(a.key_begin);
        CAPTURE(a.key_end);
        check_all_isas(c, q.data(), 2 * 64, a);
        for (const kernel_table* table : kernels::available()) {
            CAPTURE(std::string(table->isa));
            const result norm = run(*table, c, q.data(), 2 * 64, a, true);
            const result part = run(*table, c, q.data(), 2 * 64, a, false);
            for (size_t t = 0; t < a.n_tokens; ++t) {
                if (a.first_pos + t >= a.key_begin && a.key_end > a.key_begin) continue;
                for (size_t g = 0; g < 2; ++g) {
                    CHECK(part.row_max[t * 2 + g] == neg_inf);
                    CHECK(part.row_sum[t * 2 + g] == 0.0f);
                    for (size_t d = 0; d < 64; ++d) {
                        REQUIRE(norm.out[t * norm.stride + g * 64 + d] == 0.0f);
                        REQUIRE(part.out[t * part.stride + g * 64 + d] == 0.0f);
                    }
                }
            }
        }
    }
}

TEST_CASE("attention split-K: partials over disjoint key ranges merge to the single call") {
    struct split_case {
        kv_type type;
        size_t hd, group, n_tokens, first_pos, len;
        std::vector<size_t> bounds;  // multiples of kv_tile, then len
    };
    uint32_t seed = 500;
    for (const split_case& sc : {split_case{kv_type::f16, 64, 8, 1, 999, 1000, {0, 320, 1000}},
                                 split_case{kv_type::f16, 64, 8, 1, 999, 1000, {0, 96, 512, 1000}},
                                 split_case{kv_type::q8_0, 80, 2, 40, 20, 60, {0, 32, 60}},
                                 split_case{kv_type::f32, 8, 4, 40, 0, 40, {0, 32, 40}},
                                 split_case{kv_type::bf16, 64, 8, 1, 999, 1000, {0, 96, 512, 1000}},
                                 split_case{kv_type::q8_0, 128, 1, 3, 4094, 4097, {0, 2048, 4064, 4097}}}) {
        CAPTURE(std::string(kernels::kv_type_name(sc.type)));
        CAPTURE(sc.hd);
        CAPTURE(sc.n_tokens);
        CAPTURE(sc.bounds.size());
        const cache c = random_cache(sc.type, sc.hd, sc.len, seed += 2);
        const size_t q_stride = sc.group * sc.hd, rows = sc.n_tokens * sc.group, hd = sc.hd;
        const auto q = queries(sc.n_tokens, q_stride, seed + 7, 2.0f);
        const float scale = 1.0f / std::sqrt(float(hd));
        const call whole{sc.n_tokens, sc.group, sc.first_pos, 0, sc.len, scale};
        for (const kernel_table* table : kernels::available()) {
            CAPTURE(std::string(table->isa));
            const reference ref = attend(c, q.data(), q_stride, whole, bf16_products(*table, sc.type, hd));
            const double tol = rel_tol(*table, sc.type, hd);
            const result single = run(*table, c, q.data(), q_stride, whole, true);
            std::vector<result> parts;
            for (size_t i = 0; i + 1 < sc.bounds.size(); ++i) {
                const call part{sc.n_tokens, sc.group, sc.first_pos, sc.bounds[i], sc.bounds[i + 1], scale};
                parts.push_back(run(*table, c, q.data(), q_stride, part, false));
            }
            result merged = parts[0];
            for (size_t i = 1; i < parts.size(); ++i)
                for (size_t t = 0; t < sc.n_tokens; ++t)
                    for (size_t g = 0; g < sc.group; ++g) {
                        const size_t r = t * sc.group + g, at = t * merged.stride + g * hd;
                        kernels::attention_merge(merged.row_max[r], merged.row_sum[r], &merged.out[at],
                                                 parts[i].row_max[r], parts[i].row_sum[r], &parts[i].out[at], hd);
                    }
            for (size_t r = 0; r < rows; ++r) {
                const size_t at = r / sc.group * merged.stride + r % sc.group * hd;
                kernels::attention_finish(merged.row_sum[r], &merged.out[at], hd);
            }
            CHECK(worst_error(merged, ref, sc.n_tokens, sc.group, hd, false, tol) <= 1.0);
            // Same recurrence, different grouping of the sums: as close to each other as each is
            // to the reference.
            double worst = 0;
            for (size_t r = 0; r < rows; ++r)
                for (size_t d = 0; d < hd; ++d) {
                    const size_t at = r / sc.group * merged.stride + r % sc.group * hd + d;
                    worst = std::max(worst, std::fabs(double(merged.out[at]) - single.out[at]) /
                                                (tol * ref.mass[r * hd + d] + out_abs_tol));
                }
            CHECK(worst <= 1.0);
        }
    }
}

TEST_CASE("attention with huge logits (|scale q.k| ~ 1e4 and ~1e31) stays finite and exact") {
    // Integer keys (each q8_0 block led by +-127, so its scale is exactly 1) and integer queries
    // times a power of two: every score is exact in float, so the reference and the kernels see
    // the same scores and only exp and the sums round. That keeps the usual tolerance meaningful
    // at 1e31, where one float ulp of a score is ~1e24.
    std::mt19937 rng(600);
    for (size_t hd : {64u, 80u}) {
        for (bool all_negative : {false, true}) {
            const size_t len = hd == 64 ? 33 : 255, group = 2, n_tokens = 3;
            std::vector<float> key(len * hd);
            std::uniform_int_distribution<int> kd(all_negative ? 1 : -127, 127), qd(-4, all_negative ? -1 : 4);
            for (size_t i = 0; i < key.size(); ++i) key[i] = float(i % hd % 32 == 0 ? 127 : kd(rng));
            std::vector<float> qi(n_tokens * group * hd);
            for (float& x : qi) x = float(qd(rng));
            const auto value = test::gaussian(len * hd, 601);
            for (kv_type t : all_types) {
                const cache c(t, hd, len, key, value);
                // (query factor, scale): logits of a few 1e4, and ~1e31 through either factor.
                for (const auto& factor_scale : {std::pair{4.0f, 1.0f}, std::pair{0x1p90f, 1.0f},
                                                 std::pair{1.0f, 0x1p90f}}) {
                    // Plain names, not a structured binding: clang 14 cannot capture those.
                    const float factor = factor_scale.first, scale = factor_scale.second;
                    CAPTURE(hd);
                    CAPTURE(all_negative);
                    CAPTURE(std::string(kernels::kv_type_name(t)));
                    CAPTURE(factor);
                    CAPTURE(scale);
                    std::vector<float> q = qi;
                    for (float& x : q) x *= factor;
                    const call a{n_tokens, group, len - n_tokens, 0, len, scale};
                    const reference ref = attend(c, q.data(), group * hd, a);
                    double biggest = 0;
                    for (double m : ref.max) biggest = std::max(biggest, std::fabs(m));
                    CHECK(biggest >= (factor * scale > 1e6f ? 1e30 : 1e4));
                    check_all_isas(c, q.data(), group * hd, a);
                }
            }
        }
    }
}

TEST_CASE("attention: scores past float range still give finite output on every ISA") {
    // q.k overflows float here for finite inputs; attention.hpp promises saturated scores, so the
    // output is an average of the top keys' values rather than NaN.
    const cache c = random_cache(kv_type::f32, 64, 40, 700);
    std::vector<float> q(64, 0x1p100f);
    const call a{1, 1, 39, 0, 40, 0x1p60f};
    for (const kernels::kernel_table* table : kernels::available()) {
        CAPTURE(table->isa);
        const result res = run(*table, c, q.data(), 64, a, true);
        for (size_t d = 0; d < 64; ++d) CHECK(std::isfinite(res.out[d]));
    }
}

TEST_CASE("attention: latent (MLA) mode reads values as the keys' first value_dim elements") {
    // DeepSeek-V2's shape scaled down: a key of latent + rope part, values = the latent; one
    // "KV head" shared by every query head (MQA-like), decode and a prefill block.
    const size_t hd = 72, vd = 64, group = 4;
    for (kv_type type : all_types) {
        for (size_t len : {size_t(1), size_t(33), size_t(300)}) {
            CAPTURE(kernels::kv_type_name(type));
            CAPTURE(len);
            std::vector<unsigned char> keys(kernels::kv_run_bytes(type, hd, len));
            const auto data = test::gaussian(len * hd, uint32_t(len * 7 + size_t(type)));
            for (size_t p = 0; p < len; ++p) kernels::kv_store(type, hd, p, data.data() + p * hd, nullptr, keys.data(), nullptr);
            std::vector<float> k(len * hd);  // as the cache holds them
            for (size_t p = 0; p < len; ++p) kernels::kv_load(type, hd, p, keys.data(), nullptr, k.data() + p * hd, nullptr);
            const size_t n_tokens = std::min<size_t>(len, 5), first_pos = len - n_tokens;
            const auto q = test::gaussian(n_tokens * group * hd, 99);
            const float scale = 1.0f / std::sqrt(float(hd));
            // Reference in double: softmax over visible keys, values = k[:vd].
            std::vector<double> expected(n_tokens * group * vd, 0.0);
            for (size_t t = 0; t < n_tokens; ++t)
                for (size_t g = 0; g < group; ++g) {
                    const float* qr = q.data() + (t * group + g) * hd;
                    const size_t visible = first_pos + t + 1;
                    std::vector<double> s(visible);
                    double m = -1e300, sum = 0;
                    for (size_t p = 0; p < visible; ++p) {
                        double dot = 0;
                        for (size_t d = 0; d < hd; ++d) dot += double(qr[d]) * k[p * hd + d];
                        m = std::max(m, s[p] = dot * scale);
                    }
                    for (size_t p = 0; p < visible; ++p) sum += (s[p] = std::exp(s[p] - m));
                    for (size_t p = 0; p < visible; ++p)
                        for (size_t d = 0; d < vd; ++d) expected[(t * group + g) * vd + d] += s[p] / sum * k[p * hd + d];
                }
            for (const kernels::kernel_table* table : kernels::available()) {
                CAPTURE(table->isa);
                std::vector<float> out(n_tokens * group * vd, std::numeric_limits<float>::quiet_NaN());
                std::vector<float> scratch(kernels::attention_scratch_floats(hd));
                kernels::attention_args a{};
                a.q = q.data();
                a.q_stride = group * hd;
                a.n_tokens = n_tokens;
                a.group = group;
                a.head_dim = hd;
                a.type = type;
                a.keys = keys.data();
                a.values = nullptr;
                a.value_dim = vd;
                a.key_begin = 0;
                a.key_end = len;
                a.first_pos = first_pos;
                a.scale = scale;
                a.normalize = true;
                a.out = out.data();
                a.out_stride = group * vd;
                a.scratch = scratch.data();
                table->attention(a);
                double worst = 0;
                for (size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::fabs(out[i] - expected[i]));
                CHECK(worst < 1e-5);  // outputs are O(1): averages of N(0,1) values
            }
        }
    }
}
