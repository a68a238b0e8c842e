// Weight-by-activation products for every .kiln weight type, weights read in their stored type:
// a warp-per-row matrix-vector kernel for decode, a tiled GEMM for prefill, and the embedding
// lookup. All accumulate in fp32.
#include "common.cuh"

namespace kiln::cuda::detail {
namespace {

constexpr int matvec_warps = 4;  // rows per block

__global__ void matvec_kernel(device_weight w, const float* __restrict__ x, float* __restrict__ y) {
    const size_t r = size_t(blockIdx.x) * matvec_warps + threadIdx.x / 32;
    const unsigned lane = threadIdx.x % 32;
    if (r >= w.rows) return;  // whole warps leave together: no shuffles are left waiting
    const uint8_t* row = w.data + r * w.row_bytes;
    const size_t groups = groups_per_row(w.cols);
    float sum = 0.0f;
    // Adjacent lanes read adjacent groups, so a warp reads one contiguous stretch of the row.
    for (size_t g = lane; g < groups; g += 32) {
        float v[8];
        dequant8(w.type, row, w.cols, g, v);
        const size_t c0 = 8 * g;
#pragma unroll
        for (int i = 0; i < 8; ++i)
            if (c0 + i < w.cols) sum = fmaf(v[i], x[c0 + i], sum);
    }
    sum = warp_sum(sum);
    if (lane == 0) y[r] = sum;
}

// Output tile of tile_rows weight rows x tile_tokens tokens, k in steps of one 32-element unit;
// each of the 256 threads owns a 4x4 block of outputs.
constexpr int tile_rows = 64, tile_tokens = 64, tile_k = 32, gemm_threads = 256;

__global__ void __launch_bounds__(gemm_threads)
    gemm_kernel(device_weight w, const float* __restrict__ x, size_t n, float* __restrict__ y) {
    __shared__ float ws[tile_k][tile_rows + 4];    // [k][row]: weights, dequantized
    __shared__ float xs[tile_k][tile_tokens + 4];  // [k][token]
    const size_t r0 = size_t(blockIdx.x) * tile_rows, t0 = size_t(blockIdx.y) * tile_tokens;
    const int tid = threadIdx.x;
    const int load_row = tid / 4, load_quarter = tid % 4;  // each thread loads 8 values of each tile
    const int ty = tid / 16, tx = tid % 16;                // outputs rows ty*4.., tokens tx*4..
    float acc[4][4] = {};
    const size_t units = (w.cols + tile_k - 1) / tile_k;
    for (size_t u = 0; u < units; ++u) {
        float v[8];
        const size_t r = r0 + load_row;
        if (r < w.rows) {
            dequant8(w.type, w.data + r * w.row_bytes, w.cols, 4 * u + load_quarter, v);
        } else {
#pragma unroll
            for (int i = 0; i < 8; ++i) v[i] = 0.0f;
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) ws[load_quarter * 8 + i][load_row] = v[i];
        const size_t t = t0 + load_row, c0 = u * tile_k + load_quarter * 8;
#pragma unroll
        for (int i = 0; i < 8; ++i) xs[load_quarter * 8 + i][load_row] = t < n && c0 + i < w.cols ? x[t * w.cols + c0 + i] : 0.0f;
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < tile_k; ++k) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = ws[k][ty * 4 + i];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = xs[k][tx * 4 + j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const size_t r = r0 + ty * 4 + i, t = t0 + tx * 4 + j;
            if (r < w.rows && t < n) y[t * w.rows + r] = acc[i][j];
        }
}

__global__ void embed_kernel(device_weight table, const int32_t* __restrict__ tokens, float* __restrict__ out) {
    const size_t t = blockIdx.x;
    const uint8_t* row = table.data + size_t(tokens[t]) * table.row_bytes;
    float* dst = out + t * table.cols;
    for (size_t g = threadIdx.x; g < groups_per_row(table.cols); g += blockDim.x) {
        float v[8];
        dequant8(table.type, row, table.cols, g, v);
        for (int i = 0; i < 8 && 8 * g + i < table.cols; ++i) dst[8 * g + i] = v[i];
    }
}

}  // namespace

void matvec(const device_weight& w, const float* x, float* y, cudaStream_t stream) {
    const unsigned blocks = unsigned((w.rows + matvec_warps - 1) / matvec_warps);
    matvec_kernel<<<blocks, matvec_warps * 32, 0, stream>>>(w, x, y);
    check(cudaGetLastError(), "matvec kernel launch");
}

void gemm(const device_weight& w, const float* x, size_t n, float* y, cudaStream_t stream) {
    const dim3 grid(unsigned((w.rows + tile_rows - 1) / tile_rows), unsigned((n + tile_tokens - 1) / tile_tokens));
    gemm_kernel<<<grid, gemm_threads, 0, stream>>>(w, x, n, y);
    check(cudaGetLastError(), "gemm kernel launch");
}

void embed(const device_weight& table, const int32_t* tokens, size_t n, float* out, cudaStream_t stream) {
    embed_kernel<<<unsigned(n), 128, 0, stream>>>(table, tokens, out);
    check(cudaGetLastError(), "embedding kernel launch");
}

}  // namespace kiln::cuda::detail
