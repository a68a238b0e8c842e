// The CUDA attention kernel (tiled online softmax; split-K decode with a merge) against a double
// softmax over the same f16 cache, for GQA shapes, odd lengths and head sizes 8 to 256.
#include <cmath>
#include <vector>

#include "gpu_or_skip.hpp"
#include "kiln/cuda/kernels_host.hpp"
#include "kiln/quant/half.hpp"
#include "test_data.hpp"

namespace kiln::test {
namespace {

std::vector<uint16_t> f16_bits(const std::vector<float>& v) {
    std::vector<uint16_t> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = quant::f32_to_f16(v[i]);
    return out;
}

// Row t of q at position pos + t attends to cache positions 0 .. pos + t.
std::vector<double> reference(const std::vector<float>& q, size_t n_heads, size_t n_kv_heads, size_t hd,
                              const std::vector<uint16_t>& k, const std::vector<uint16_t>& v, size_t pos) {
    const size_t n = q.size() / (n_heads * hd), kv_dim = n_kv_heads * hd, group = n_heads / n_kv_heads;
    std::vector<double> out(q.size());
    for (size_t t = 0; t < n; ++t)
        for (size_t h = 0; h < n_heads; ++h) {
            const size_t keys = pos + t + 1, kvh = h / group;
            std::vector<double> s(keys);
            double max = -1e300;
            for (size_t j = 0; j < keys; ++j) {
                double dot = 0;
                for (size_t d = 0; d < hd; ++d)
                    dot += double(q[(t * n_heads + h) * hd + d]) * quant::f16_to_f32(k[j * kv_dim + kvh * hd + d]);
                s[j] = dot / std::sqrt(double(hd));
                max = std::max(max, s[j]);
            }
            double sum = 0;
            for (double& x : s) sum += (x = std::exp(x - max));
            for (size_t d = 0; d < hd; ++d) {
                double acc = 0;
                for (size_t j = 0; j < keys; ++j) acc += s[j] * quant::f16_to_f32(v[j * kv_dim + kvh * hd + d]);
                out[(t * n_heads + h) * hd + d] = acc / sum;
            }
        }
    return out;
}

struct attention_case {
    size_t n_heads, n_kv_heads, head_dim, n, pos, splits;
};

}  // namespace

// Tolerance 2e-5 absolute on outputs of size ~1 (values are N(0,1)): fp32 online softmax against
// a double one.
TEST_CASE("cuda attention matches a double softmax over the f16 cache") {
    if (!gpu_or_skip()) return;
    const attention_case cases[] = {
        {8, 4, 8, 37, 5, 1},      // stories260K's shape, prefill after 5 cached positions
        {8, 2, 64, 70, 0, 1},     // GQA 4:1, prefill from position 0 over several tiles
        {4, 4, 128, 1, 300, 1},   // MHA decode, one block per head
        {4, 1, 128, 1, 300, 7},   // MQA decode split 7 ways (splits of 43: tiles end mid-way)
        {2, 2, 256, 1, 3, 16},    // more splits than keys: empty splits must weigh nothing
        {6, 2, 256, 9, 40, 1},    // the largest head
        {4, 2, 96, 1, 1000, 32},  // a head that is not a multiple of 32
    };
    uint32_t seed = 10;
    for (const attention_case& c : cases) {
        CAPTURE(c.n_heads);
        CAPTURE(c.n_kv_heads);
        CAPTURE(c.head_dim);
        CAPTURE(c.n);
        CAPTURE(c.pos);
        CAPTURE(c.splits);
        const size_t positions = c.pos + c.n, kv_dim = c.n_kv_heads * c.head_dim;
        const std::vector<uint16_t> k = f16_bits(gaussian(positions * kv_dim, seed++));
        const std::vector<uint16_t> v = f16_bits(gaussian(positions * kv_dim, seed++));
        const std::vector<float> q = gaussian(c.n * c.n_heads * c.head_dim, seed++);
        const std::vector<float> got =
            cuda::host::attention(q, c.n_heads, c.n_kv_heads, c.head_dim, k, v, int32_t(c.pos), c.splits);
        const std::vector<double> want = reference(q, c.n_heads, c.n_kv_heads, c.head_dim, k, v, c.pos);
        double worst = 0;
        for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
        CHECK(worst < 2e-5);
    }
}

}  // namespace kiln::test
