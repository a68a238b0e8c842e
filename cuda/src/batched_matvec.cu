// Matrix-vector products over a stack of matrices (deepseek2): per head (W_UK, W_UV of MLA's
// absorption) or per chosen expert, the expert ids read from device memory so that a captured
// decode graph follows whatever the router picks. The row loop is matvec's (matmul.cu).
#include "common.cuh"

namespace kiln::cuda::detail {
namespace {

constexpr int rows_per_block = 4;  // one warp per row

__global__ void batched_matvec_kernel(weight_stack w, const int32_t* __restrict__ ids, batch_layout layout,
                                      const float* __restrict__ x, float* __restrict__ y) {
    const size_t b = blockIdx.x;  // the item
    const size_t r = size_t(blockIdx.y) * rows_per_block + threadIdx.x / 32;
    const unsigned lane = threadIdx.x % 32;
    if (r >= w.w.rows) return;  // whole warps
    const size_t g = b / layout.group, i = b % layout.group;
    const size_t m = ids ? size_t(ids[b]) : i;
    // Router logits with a NaN or inf make every probability NaN, and the routing kernel then
    // names no expert (INT_MAX): never index past the stack; the output is NaN, as on the CPU.
    if (m >= w.count) {
        if (lane == 0) y[g * layout.y_stride + i * layout.y_step + r] = __int_as_float(0x7fc00000);
        return;  // the whole block: m is the item's
    }
    const uint8_t* row = w.w.data + m * w.matrix_bytes + r * w.w.row_bytes;
    const float* xb = x + g * layout.x_stride + i * layout.x_step;
    const size_t groups = groups_per_row(w.w.cols);
    float sum = 0.0f;
    for (size_t k = lane; k < groups; k += 32) {
        float v[8];
        dequant8(w.w.type, row, w.w.cols, k, v);
        const size_t c0 = 8 * k;
#pragma unroll
        for (int j = 0; j < 8; ++j)
            if (c0 + j < w.w.cols) sum = fmaf(v[j], xb[c0 + j], sum);
    }
    sum = warp_sum(sum);
    if (lane == 0) y[g * layout.y_stride + i * layout.y_step + r] = sum;
}

}  // namespace

void batched_matvec(const weight_stack& w, const int32_t* ids, const batch_layout& layout, const float* x, float* y,
                    cudaStream_t stream) {
    if (layout.items == 0 || w.w.rows == 0) return;
    const dim3 grid(unsigned(layout.items), unsigned((w.w.rows + rows_per_block - 1) / rows_per_block));
    batched_matvec_kernel<<<grid, rows_per_block * 32, 0, stream>>>(w, ids, layout, x, y);
    check(cudaGetLastError(), "batched matvec kernel launch");
}

}  // namespace kiln::cuda::detail
