// Helpers shared by pcgen's CUDA kernels.
//
// Only c10/cuda headers (streams, device guards) are used, not ATen/cuda/CUDAContext.h:
// the latter pulls in cuBLAS/cuSPARSE headers, which a bare CUDA toolkit (nvcc + cudart,
// as on CI) does not ship, while c10/cuda needs nothing beyond the CUDA runtime.
#pragma once

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include "topk_insert.h"

namespace pcgen {
namespace cuda {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace cuda
}  // namespace pcgen
