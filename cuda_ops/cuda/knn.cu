// k-nearest neighbours and ball query on CUDA (the schemas live in cpu/knn.cpp).
//
// One thread per query point; the block streams the search cloud through shared memory in
// tiles and every thread keeps its k best in registers (k <= 32) or directly in its output
// row (larger k). Memory is O(B*N*k): no (N, M) distance matrix is ever formed. Chamfer
// uses this with k = 1.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <limits>

#include "cuda/common.cuh"

namespace pcgen {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename T, int KREG>
__global__ void knn_kernel(const T* __restrict__ p1, const T* __restrict__ p2,
                           const int64_t* __restrict__ len1, const int64_t* __restrict__ len2,
                           int64_t N, int64_t M, int D, int k, int tile, T limit,
                           T* __restrict__ dout, int64_t* __restrict__ iout) {
  extern __shared__ unsigned char smem_raw[];
  T* sp = reinterpret_cast<T*>(smem_raw);
  const int64_t b = blockIdx.y;
  const int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t L1 = len1[b], L2 = len2[b];
  if (int64_t(blockIdx.x) * blockDim.x >= L1) return;  // whole block is padding
  const bool active = n < L1;
  const int64_t t = b * N + n;
  T rd[KREG > 0 ? KREG : 1];
  int64_t ri[KREG > 0 ? KREG : 1];
  T* d = KREG > 0 ? rd : dout + t * k;
  int64_t* ix = KREG > 0 ? ri : iout + t * k;
  int count = 0;
  const T* q = p1 + t * D;
  const T* base = p2 + b * M * D;
  for (int64_t s = 0; s < L2; s += tile) {
    const int64_t cnt = min(int64_t(tile), L2 - s);
    __syncthreads();
    for (int64_t e = threadIdx.x; e < cnt * D; e += blockDim.x) sp[e] = base[s * D + e];
    __syncthreads();
    if (!active) continue;
    for (int64_t j = 0; j < cnt; ++j) {
      T dist = 0;
      for (int c = 0; c < D; ++c) {
        T diff = q[c] - sp[j * D + c];
        dist += diff * diff;
      }
      T worst = count < k ? limit : d[k - 1];
      if (dist <= worst) topk_insert(d, ix, k, count, limit, dist, s + j);
    }
  }
  if (!active) return;
  for (int j = count; j < k; ++j) d[j] = 0, ix[j] = -1;
  if (KREG > 0)
    for (int j = 0; j < k; ++j) dout[t * k + j] = d[j], iout[t * k + j] = ix[j];
}

template <typename T, int KREG>
void launch(const at::Tensor& a, const at::Tensor& b, const at::Tensor& l1, const at::Tensor& l2,
            int k, T limit, at::Tensor& dists, at::Tensor& idx) {
  const int64_t B = a.size(0), N = a.size(1), M = b.size(1);
  const int D = int(a.size(2));
  int tile = int(std::max<int64_t>(1, std::min<int64_t>(1024, (32 * 1024) / (D * sizeof(T)))));
  dim3 grid(unsigned(ceil_div(N, kThreads)), unsigned(B));
  size_t smem = size_t(tile) * D * sizeof(T);
  auto stream = c10::cuda::getCurrentCUDAStream();
  knn_kernel<T, KREG><<<grid, kThreads, smem, stream>>>(
      a.data_ptr<T>(), b.data_ptr<T>(), l1.data_ptr<int64_t>(), l2.data_ptr<int64_t>(), N, M, D,
      k, tile, limit, dists.data_ptr<T>(), idx.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor> knn_common(const at::Tensor& p1, const at::Tensor& p2,
                                              const at::Tensor& lengths1, const at::Tensor& lengths2,
                                              int64_t k, double max_dist2) {
  TORCH_CHECK(p1.dim() == 3 && p2.dim() == 3, "p1 and p2 must be (B, N, D) and (B, M, D)");
  TORCH_CHECK(p1.size(0) == p2.size(0) && p1.size(2) == p2.size(2), "batch/dimension mismatch");
  TORCH_CHECK(p1.scalar_type() == p2.scalar_type(), "p1 and p2 must share dtype");
  TORCH_CHECK(k >= 1 && k < (int64_t(1) << 31), "k out of range");
  c10::cuda::CUDAGuard guard(p1.device());
  auto a = p1.contiguous();
  auto b = p2.contiguous();
  auto l1 = lengths1.to(p1.device(), at::kLong).contiguous();
  auto l2 = lengths2.to(p1.device(), at::kLong).contiguous();
  const int64_t B = a.size(0), N = a.size(1);
  auto dists = at::zeros({B, N, k}, a.options());
  auto idx = at::full({B, N, k}, -1, a.options().dtype(at::kLong));
  if (B == 0 || N == 0 || b.size(1) == 0) return {dists, idx};
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "pcgen_knn_cuda", [&] {
    const scalar_t limit = max_dist2 == std::numeric_limits<double>::infinity()
                               ? std::numeric_limits<scalar_t>::infinity()
                               : scalar_t(max_dist2);
    if (k == 1)
      launch<scalar_t, 1>(a, b, l1, l2, int(k), limit, dists, idx);
    else if (k <= 8)
      launch<scalar_t, 8>(a, b, l1, l2, int(k), limit, dists, idx);
    else if (k <= 32)
      launch<scalar_t, 32>(a, b, l1, l2, int(k), limit, dists, idx);
    else
      launch<scalar_t, 0>(a, b, l1, l2, int(k), limit, dists, idx);
  });
  return {dists, idx};
}

std::tuple<at::Tensor, at::Tensor> knn_cuda(const at::Tensor& p1, const at::Tensor& p2,
                                            const at::Tensor& lengths1, const at::Tensor& lengths2,
                                            int64_t k) {
  return knn_common(p1, p2, lengths1, lengths2, k, std::numeric_limits<double>::infinity());
}

std::tuple<at::Tensor, at::Tensor> ball_query_cuda(const at::Tensor& p1, const at::Tensor& p2,
                                                   const at::Tensor& lengths1,
                                                   const at::Tensor& lengths2, int64_t k,
                                                   double radius) {
  TORCH_CHECK(radius > 0, "radius must be positive");
  return knn_common(p1, p2, lengths1, lengths2, k, radius * radius);
}

}  // namespace
}  // namespace cuda
}  // namespace pcgen

TORCH_LIBRARY_IMPL(pcgen, CUDA, m) {
  m.impl("knn", &pcgen::cuda::knn_cuda);
  m.impl("ball_query", &pcgen::cuda::ball_query_cuda);
}
