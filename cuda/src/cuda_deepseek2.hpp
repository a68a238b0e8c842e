// The deepseek2 model on the GPU (cuda_deepseek2.cpp), for make_cuda_model to dispatch to.
#pragma once
#include <memory>

#include "kiln/cuda/cuda_backend.hpp"

namespace kiln::cuda::detail {

std::unique_ptr<cuda_model> make_cuda_deepseek2(std::shared_ptr<const model> m, const cuda_options& options);

}  // namespace kiln::cuda::detail
