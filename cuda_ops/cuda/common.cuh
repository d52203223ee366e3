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

namespace pcgen {
namespace cuda {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Keep the k best (squared distance, index) pairs in ascending order; ties prefer the
// lower index so CPU, CUDA and the reference agree.
template <typename T>
__device__ __forceinline__ void topk_push(T* d, int64_t* i, int k, int& count, T limit, T dist,
                                          int64_t idx) {
  if (dist > limit) return;
  if (count == k && (dist > d[k - 1] || (dist == d[k - 1] && idx > i[k - 1]))) return;
  int j = count < k ? count++ : k - 1;
  while (j > 0 && (d[j - 1] > dist || (d[j - 1] == dist && i[j - 1] > idx))) {
    d[j] = d[j - 1];
    i[j] = i[j - 1];
    --j;
  }
  d[j] = dist;
  i[j] = idx;
}

}  // namespace cuda
}  // namespace pcgen
