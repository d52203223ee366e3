// The k-best insertion of pcgen's neighbour kernels, one definition for the CPU and CUDA
// builds, so both keep ties in the same order (the lower index first) and agree exactly
// with each other and with the Python reference.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define PCGEN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PCGEN_HOST_DEVICE inline
#endif

namespace pcgen {

// Insert (dist, idx) into the ascending arrays d/i holding `count` of at most `k` entries.
// Only distances <= limit are kept (the ball query's radius^2; inf for k-NN).
template <typename T, typename Int>
PCGEN_HOST_DEVICE void topk_insert(T* d, int64_t* i, Int k, Int& count, T limit, T dist,
                                   int64_t idx) {
  if (dist > limit) return;
  if (count == k && (dist > d[k - 1] || (dist == d[k - 1] && idx > i[k - 1]))) return;
  Int j = count < k ? count++ : k - 1;
  while (j > 0 && (d[j - 1] > dist || (d[j - 1] == dist && i[j - 1] > idx))) {
    d[j] = d[j - 1];
    i[j] = i[j - 1];
    --j;
  }
  d[j] = dist;
  i[j] = idx;
}

}  // namespace pcgen
