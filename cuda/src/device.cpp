// Device discovery and CUDA error reporting.
#include <cuda_runtime_api.h>

#include <string>

#include "kiln/cuda/cuda_backend.hpp"
#include "kiln/formats/error.hpp"
#include "launch.hpp"

namespace kiln::cuda {
namespace detail {

void check(cudaError_t status, const char* what) {
    if (status == cudaSuccess) return;
    cudaGetLastError();  // clear a non-sticky error so the next call does not report it again
    throw error(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(status) + " (" +
                cudaGetErrorString(status) + ")");
}

}  // namespace detail

std::string unavailable_reason(int ordinal) {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        cudaGetLastError();
        int driver = 0;
        // Without libcuda the runtime calls it an insufficient driver; say what it is.
        if (cudaDriverGetVersion(&driver) == cudaSuccess && driver == 0)
            return "no CUDA device: no NVIDIA driver is installed";
        return std::string("no CUDA device: ") + cudaGetErrorString(status);
    }
    if (count == 0) return "no CUDA device: the driver reports none";
    if (ordinal < 0 || ordinal >= count)
        return "no CUDA device " + std::to_string(ordinal) + " (" + std::to_string(count) + " present)";
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, ordinal) != cudaSuccess) {
        cudaGetLastError();
        return "CUDA device " + std::to_string(ordinal) + " cannot be queried";
    }
    // The module holds sm_80 and sm_90 code plus sm_90 PTX: anything older than Ampere has none.
    if (prop.major < 8)
        return std::string("CUDA device ") + prop.name + " has compute capability " + std::to_string(prop.major) + "." +
               std::to_string(prop.minor) + "; kiln's CUDA backend needs 8.0 or newer";
    return {};
}

device_info describe_device(int ordinal) {
    cudaDeviceProp prop{};
    detail::check(cudaGetDeviceProperties(&prop, ordinal), "cudaGetDeviceProperties");
    device_info info;
    info.name = prop.name;
    info.major = prop.major;
    info.minor = prop.minor;
    int previous = 0;
    detail::check(cudaGetDevice(&previous), "cudaGetDevice");
    detail::check(cudaSetDevice(ordinal), "cudaSetDevice");
    detail::check(cudaMemGetInfo(&info.free_bytes, &info.total_bytes), "cudaMemGetInfo");
    detail::check(cudaSetDevice(previous), "cudaSetDevice");
    cudaRuntimeGetVersion(&info.runtime_version);
    cudaDriverGetVersion(&info.driver_version);
    return info;
}

}  // namespace kiln::cuda
