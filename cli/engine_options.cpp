// Shared model-running options (see engine_options.hpp).
#include "engine_options.hpp"

#include <cstdio>

#include "kiln/formats/error.hpp"
#include "kiln/kernels/kernels.hpp"
#include "kiln/runtime/fast_deepseek2.hpp"
#include "kiln/runtime/fast_llama.hpp"
#include "kiln/runtime/reference_deepseek2.hpp"
#include "kiln/runtime/reference_llama.hpp"
#ifdef KILN_HAVE_CUDA
#include "kiln/cuda/cuda_backend.hpp"
#endif

namespace kiln::cli {

void add_engine_options(CLI::App* cmd, engine_args& args, bool with_context, bool with_threads) {
    if (with_threads)
        cmd->add_option("-t,--threads", args.threads, "Threads (0 = physical cores)")
            ->capture_default_str()
            ->check(CLI::NonNegativeNumber);
    if (with_context)
        cmd->add_option("-c,--ctx-size", args.context, "Context size in tokens, the KV cache's length (0 = the model's)")
            ->capture_default_str()
            ->check(CLI::NonNegativeNumber);
    cmd->add_option("-b,--batch-size", args.batch, "Prompt tokens per prefill step")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--kv-type", args.kv_type,
                    "KV cache element type: f16, bf16 (as small as f16, about twice as fast attention on CPUs with "
                    "AVX512-BF16, 8-bit precision), q8_0 (half the size) or f32")
        ->capture_default_str()
        ->check(CLI::IsMember({"f16", "bf16", "q8_0", "f32"}));
    cmd->add_flag("--reference", args.reference, "Use the plain f32 reference forward pass (slow; the oracle)");
    cmd->add_option("--device", args.device, "Where the model runs: cpu, or cuda (an NVIDIA GPU; needs -DKILN_CUDA=ON)")
        ->capture_default_str()
        ->check(CLI::IsMember({"cpu", "cuda"}));
}

namespace {

// --device cuda: the GPU backend, or one line saying why it cannot run here.
std::unique_ptr<language_model> make_cuda_engine([[maybe_unused]] std::shared_ptr<const model> m,
                                                 [[maybe_unused]] const engine_args& args,
                                                 [[maybe_unused]] int32_t context) {
    if (args.reference) throw error("--reference runs on the CPU only; drop --device cuda");
#ifdef KILN_HAVE_CUDA
    if (const std::string why = cuda::unavailable_reason(); !why.empty()) throw error(why);
    // --kv-type is a CPU cache option: the device cache (KV, or deepseek2's latent) is f16, kiln's default.
    if (args.kv_type != "f16") throw error("--device cuda keeps an f16 KV cache; --kv-type " + args.kv_type + " is CPU-only");
    return cuda::make_cuda_model(std::move(m), cuda::cuda_options{.context_length = context, .max_batch = args.batch});
#else
    throw error("kiln was built without CUDA (-DKILN_CUDA=ON)");
#endif
}

}  // namespace

void add_sampling_options(CLI::App* cmd, sampler_params& sampling) {
    cmd->add_option("--temp", sampling.temperature, "Temperature (0 = greedy)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--top-k", sampling.top_k, "Keep the k most likely tokens (0 = off)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--top-p", sampling.top_p, "Nucleus sampling threshold (1 = off)")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--seed", sampling.seed, "Random seed")->capture_default_str();
}

std::unique_ptr<language_model> make_engine(std::shared_ptr<const model> m, thread_pool& pool, const engine_args& args,
                                            int32_t context) {
    const int32_t ctx = context > 0 ? context : args.context;
    if (ctx > 0 && uint64_t(ctx) > m->config().context_length)
        std::fprintf(stderr, "kiln: warning: context %d is longer than the model was trained for (%llu)\n", ctx,
                     (unsigned long long)m->config().context_length);
    if (args.device == "cuda") return make_cuda_engine(std::move(m), args, ctx);
    const auto kv = kernels::kv_type_from_name(args.kv_type);
    if (!kv) throw error("unknown KV cache type '" + args.kv_type + "' (f16, bf16, q8_0 or f32)");
    if (m->is_deepseek2()) {
        if (args.reference) return std::make_unique<reference_deepseek2>(std::move(m), ctx);
        return std::make_unique<fast_deepseek2>(
            std::move(m), pool, fast_deepseek2_options{.context_length = ctx, .max_batch = args.batch, .kv_type = *kv});
    }
    if (args.reference) return std::make_unique<reference_llama>(std::move(m), ctx);
    return std::make_unique<fast_llama>(std::move(m), pool,
                                        fast_llama_options{.context_length = ctx, .max_batch = args.batch, .kv_type = *kv});
}

namespace {

// The latent cache of a deepseek2 model against the per-head K/V cache a GQA/MHA layout of the
// same model would need (n_heads x (qk_head_dim + v_head_dim) per layer and position).
void print_latent_cache(const deepseek2_config& c, const std::string& type, size_t positions, size_t bytes,
                        size_t bytes_per_position) {
    const double per_head_elements = double(c.n_layers * c.n_heads * (c.qk_head_dim() + c.v_head_dim));
    const double element = double(bytes_per_position) / double(c.n_layers * c.latent_dim());
    std::fprintf(stderr,
                 "kiln: latent (MLA) cache %s, %zu positions, %.2f MiB (%zu bytes per token); "
                 "a per-head K/V cache would need %.2f MiB (%.1fx)\n",
                 type.c_str(), positions, double(bytes) / double(1 << 20), bytes_per_position,
                 per_head_elements * element * double(positions) / double(1 << 20),
                 per_head_elements * element / double(bytes_per_position));
}

// deepseek2: the shape, and (fast path) the latent cache.
void print_deepseek2(const std::string& model_path, const model& m, const fast_deepseek2* fast) {
    const deepseek2_config& c = m.deepseek2();
    std::fprintf(stderr,
                 "kiln: %s: deepseek2, %llu layers, dim %llu, %llu heads, MLA kv_lora %llu + rope %llu, q_lora %llu, "
                 "%llu experts (top %llu, %llu shared), vocab %llu\n",
                 model_path.c_str(), (unsigned long long)c.n_layers, (unsigned long long)c.dim,
                 (unsigned long long)c.n_heads, (unsigned long long)c.kv_lora_rank,
                 (unsigned long long)c.qk_rope_head_dim, (unsigned long long)c.q_lora_rank,
                 (unsigned long long)c.n_experts, (unsigned long long)c.n_experts_used,
                 (unsigned long long)c.n_shared_experts, (unsigned long long)c.vocab_size);
    if (!fast) return;
    const latent_cache& kv = fast->cache();
    print_latent_cache(c, std::string(kernels::kv_type_name(kv.type())), kv.context(), kv.bytes(),
                       kv.bytes_per_position());
}

}  // namespace

void print_engine(const std::string& model_path, const model& m, const language_model& lm, const thread_pool& pool,
                  const engine_args& args) {
#ifdef KILN_HAVE_CUDA
    if (const auto* gpu = dynamic_cast<const cuda::cuda_model*>(&lm)) {
        const llama_config& c = m.config();
        const cuda::device_info& d = gpu->device();
        const cuda::device_info now = cuda::describe_device();
        auto mib = [](size_t bytes) { return double(bytes) / double(1 << 20); };
        if (m.is_deepseek2())
            print_deepseek2(model_path, m, nullptr);
        else
            std::fprintf(stderr, "kiln: %s: llama, %llu layers, dim %llu, %llu heads (%llu kv), vocab %llu\n",
                         model_path.c_str(), (unsigned long long)c.n_layers, (unsigned long long)c.dim,
                         (unsigned long long)c.n_heads, (unsigned long long)c.n_kv_heads,
                         (unsigned long long)c.vocab_size);
        std::fprintf(stderr,
                     "kiln: backend: cuda, device %s (sm_%d%d, CUDA runtime %d, driver %d), batch %d\n"
                     "kiln: device memory: weights %.2f MiB, %s f16 %d positions %.2f MiB, buffers %.2f MiB; "
                     "%.0f of %.0f MiB in use on the device\n",
                     d.name.c_str(), d.major, d.minor, d.runtime_version, d.driver_version, args.batch,
                     mib(gpu->weight_bytes()), m.is_deepseek2() ? "latent (MLA) cache" : "KV cache",
                     lm.context_length(), mib(gpu->cache_bytes()), mib(gpu->other_bytes()),
                     mib(now.total_bytes - now.free_bytes), mib(now.total_bytes));
        // The device's latent cache is f16, [kv_lora + rope] per layer and position.
        if (m.is_deepseek2() && lm.context_length() > 0)
            print_latent_cache(m.deepseek2(), "f16", size_t(lm.context_length()), gpu->cache_bytes(),
                               gpu->cache_bytes() / size_t(lm.context_length()));
        return;
    }
#endif
    if (m.is_deepseek2()) {
        const auto* fast = dynamic_cast<const fast_deepseek2*>(&lm);
        print_deepseek2(model_path, m, fast);
        if (fast)
            std::fprintf(stderr, "kiln: fast path, simd %s, %d threads, batch %d\n",
                         std::string(kernels::active_isa()).c_str(), pool.size(), args.batch);
        else
            std::fprintf(stderr, "kiln: reference path (f32, one thread), context %d\n", lm.context_length());
        return;
    }
    const llama_config& c = m.config();
    std::fprintf(stderr, "kiln: %s: llama, %llu layers, dim %llu, %llu heads (%llu kv), vocab %llu\n",
                 model_path.c_str(), (unsigned long long)c.n_layers, (unsigned long long)c.dim,
                 (unsigned long long)c.n_heads, (unsigned long long)c.n_kv_heads, (unsigned long long)c.vocab_size);
    if (const auto* fast = dynamic_cast<const fast_llama*>(&lm)) {
        const kv_cache& kv = fast->cache();
        std::fprintf(stderr,
                     "kiln: fast path, simd %s, %d threads, batch %d\n"
                     "kiln: KV cache %s, %zu positions, %.2f MiB (%zu bytes per token)\n",
                     std::string(kernels::active_isa()).c_str(), pool.size(), args.batch,
                     std::string(kernels::kv_type_name(kv.type())).c_str(), kv.context(),
                     double(kv.bytes()) / double(1 << 20), kv.bytes_per_position());
    } else {
        std::fprintf(stderr, "kiln: reference path (f32, one thread), context %d\n", lm.context_length());
    }
}

}  // namespace kiln::cli
