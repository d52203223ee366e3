// Farthest point sampling on CUDA (schema in cpu/fps.cpp): one block per cloud.
//
// Each step every thread updates the running min-distance of its strided points to the
// last pick and proposes its farthest; a shared-memory tree reduction picks the block's
// farthest (ties: lowest index, like torch.argmax in the reference).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <torch/library.h>

#include "cuda/common.cuh"

namespace pcgen {
namespace cuda {
namespace {

constexpr int kFpsThreads = 512;

template <typename T>
__global__ void fps_kernel(const T* __restrict__ pts, const int64_t* __restrict__ len,
                           const int64_t* __restrict__ start, int64_t N, int D, int64_t n,
                           T* __restrict__ mind, int64_t* __restrict__ out) {
  __shared__ T best_d[kFpsThreads];
  __shared__ int64_t best_i[kFpsThreads];
  const int64_t b = blockIdx.x;
  const int64_t L = len[b];
  const T* p = pts + b * N * D;
  T* md = mind + b * N;
  int64_t* o = out + b * n;
  if (L == 0) return;
  for (int64_t j = threadIdx.x; j < L; j += blockDim.x) md[j] = INFINITY;
  int64_t cur = min(max(start[b], int64_t(0)), L - 1);
  const int64_t nsel = min(n, L);
  __syncthreads();
  for (int64_t s = 0; s < nsel; ++s) {
    if (threadIdx.x == 0) o[s] = cur;
    T bd = -1;
    int64_t bi = 0;
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x) {
      T d = 0;
      for (int c = 0; c < D; ++c) {
        T diff = p[j * D + c] - p[cur * D + c];
        d += diff * diff;
      }
      T m = j == cur ? T(-1) : min(md[j], d);  // picked: never again (see cpu/fps.cpp)
      md[j] = m;
      if (m > bd) bd = m, bi = j;
    }
    best_d[threadIdx.x] = bd;
    best_i[threadIdx.x] = bi;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
      if (threadIdx.x < w) {
        T od = best_d[threadIdx.x + w];
        int64_t oi = best_i[threadIdx.x + w];
        if (od > best_d[threadIdx.x] || (od == best_d[threadIdx.x] && oi < best_i[threadIdx.x]))
          best_d[threadIdx.x] = od, best_i[threadIdx.x] = oi;
      }
      __syncthreads();
    }
    cur = best_i[0];
    __syncthreads();
  }
}

at::Tensor fps_cuda(const at::Tensor& points, const at::Tensor& lengths, int64_t n,
                    const at::Tensor& start_idx) {
  TORCH_CHECK(points.dim() == 3, "points must be (B, N, D)");
  TORCH_CHECK(n >= 0, "n must be >= 0");
  c10::cuda::CUDAGuard guard(points.device());
  auto p = points.contiguous();
  auto len = lengths.to(points.device(), at::kLong).contiguous();
  auto st = start_idx.to(points.device(), at::kLong).contiguous();
  const int64_t B = p.size(0), N = p.size(1);
  auto out = at::full({B, n}, -1, p.options().dtype(at::kLong));
  if (B == 0 || N == 0 || n == 0) return out;
  auto mind = at::empty({B, N}, p.options());
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "pcgen_fps_cuda", [&] {
    fps_kernel<scalar_t><<<unsigned(B), kFpsThreads, 0, stream>>>(
        p.data_ptr<scalar_t>(), len.data_ptr<int64_t>(), st.data_ptr<int64_t>(), N,
        int(p.size(2)), n, mind.data_ptr<scalar_t>(), out.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace
}  // namespace cuda
}  // namespace pcgen

TORCH_LIBRARY_IMPL(pcgen, CUDA, m) { m.impl("farthest_point_sample", &pcgen::cuda::fps_cuda); }
