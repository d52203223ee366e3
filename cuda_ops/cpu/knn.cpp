// k-nearest neighbours and ball query on the CPU, parallel over batch x queries.
//
// Schemas (shared with the CUDA kernels in cuda/knn.cu):
//   knn(p1 (B,N,D), p2 (B,M,D), lengths1 (B,), lengths2 (B,), k) -> (dists (B,N,k), idx (B,N,k))
//   ball_query(p1, p2, lengths1, lengths2, k, radius) -> (dists, idx)
// dists are squared; missing neighbours get idx -1 and dist 0. Gradients are
// registered from Python (pcgen/ops/_register.py) using idx, so no backward here.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <vector>

#include "cpu/neighbors.h"

namespace pcgen {
namespace {

// Below this many search points a grid does not pay for itself.
constexpr int64_t kGridMinPoints = 96;

// Run fn(i) for i in [0, n) on the thread pool, handing out items one at a time from a
// shared counter: a thread the OS parks (2 shared cores, many processes) then delays only
// its current item instead of a fixed half of the work, as a static split would.
template <typename F>
void parallel_dynamic(int64_t n, const F& fn) {
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), n);
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
  });
}

template <typename T>
void knn_kernel(const at::Tensor& p1, const at::Tensor& p2, const int64_t* len1, const int64_t* len2,
                int64_t k, double max_dist2, at::Tensor& dists, at::Tensor& idx) {
  const int64_t B = p1.size(0), N = p1.size(1), M = p2.size(1), D = p1.size(2);
  const T* a = p1.data_ptr<T>();
  const T* b = p2.data_ptr<T>();
  T* dout = dists.data_ptr<T>();
  int64_t* iout = idx.data_ptr<int64_t>();
  const T limit = std::isfinite(max_dist2) ? T(max_dist2) : std::numeric_limits<T>::infinity();

  auto run_cloud = [&](int64_t bi, UniformGrid<T>& grid, bool parallel_queries) {
    const int64_t L = len1[bi];
    std::fill(dout + (bi * N + L) * k, dout + (bi + 1) * N * k, T(0));  // padded queries
    std::fill(iout + (bi * N + L) * k, iout + (bi + 1) * N * k, int64_t(-1));
    const bool use_grid = D <= 3 && len2[bi] >= kGridMinPoints;
    std::vector<int64_t> order(L);
    for (int64_t n = 0; n < L; ++n) order[n] = n;
    if (use_grid) {
      grid.build(b + bi * M * D, len2[bi], D);
      // Visit queries cell by cell: neighbouring queries touch the same cells, which
      // keeps the grid in cache (random order costs ~2x on 100k clouds).
      if (L >= 2 * kGridMinPoints) {
        std::vector<int64_t> key(L);
        const int64_t C = grid.num_cells();
        std::vector<int64_t> cnt(C + 1, 0);
        for (int64_t n = 0; n < L; ++n) ++cnt[(key[n] = grid.cell_of(a + (bi * N + n) * D)) + 1];
        for (int64_t c = 0; c < C; ++c) cnt[c + 1] += cnt[c];
        for (int64_t n = 0; n < L; ++n) order[cnt[key[n]]++] = n;
      }
    }
    auto queries = [&](int64_t s, int64_t e) {
      for (int64_t u = s; u < e; ++u) {
        const int64_t t = bi * N + order[u];
        T* d = dout + t * k;
        int64_t* i = iout + t * k;
        TopK<T> top(d, i, k, limit);
        const T* q = a + t * D;
        if (use_grid)
          grid.query(q, top);
        else
          brute_force_knn(q, b + bi * M * D, len2[bi], D, top);
        for (int64_t j = top.count; j < k; ++j) d[j] = 0, i[j] = -1;
      }
    };
    if (parallel_queries) {
      const int64_t chunk = 512;
      parallel_dynamic((L + chunk - 1) / chunk,
                       [&](int64_t c) { queries(c * chunk, std::min(L, (c + 1) * chunk)); });
    } else {
      queries(0, L);
    }
  };
  // One parallel region per call: with as many clouds as threads each thread takes whole
  // clouds (no barriers between building and querying); otherwise clouds go one by one
  // with their queries split across threads.
  // Tiny problems run on the calling thread: waking a thread pool costs more than them.
  const double work = double(B) * N * (D <= 3 ? 32.0 : double(std::max<int64_t>(M, 1)) * D);
  if (work < 2e5) {
    for (int64_t bi = 0; bi < B; ++bi) {
      UniformGrid<T> grid;
      run_cloud(bi, grid, false);
    }
  } else if (B >= at::get_num_threads()) {
    parallel_dynamic(B, [&](int64_t bi) {
      UniformGrid<T> grid;
      run_cloud(bi, grid, false);
    });
  } else {
    for (int64_t bi = 0; bi < B; ++bi) {
      UniformGrid<T> grid;
      run_cloud(bi, grid, true);
    }
  }
}

std::tuple<at::Tensor, at::Tensor> knn_common(const at::Tensor& p1, const at::Tensor& p2,
                                              const at::Tensor& lengths1, const at::Tensor& lengths2,
                                              int64_t k, double max_dist2) {
  TORCH_CHECK(p1.dim() == 3 && p2.dim() == 3, "p1 and p2 must be (B, N, D) and (B, M, D)");
  TORCH_CHECK(p1.size(0) == p2.size(0) && p1.size(2) == p2.size(2), "batch/dimension mismatch");
  TORCH_CHECK(p1.scalar_type() == p2.scalar_type(), "p1 and p2 must share dtype");
  TORCH_CHECK(k >= 1, "k must be >= 1");
  auto a = p1.contiguous();
  auto b = p2.contiguous();
  auto l1 = lengths1.to(at::kLong).contiguous();
  auto l2 = lengths2.to(at::kLong).contiguous();
  const int64_t B = a.size(0), N = a.size(1);
  TORCH_CHECK(l1.numel() == B && l2.numel() == B, "lengths must be (B,)");
  for (int64_t bi = 0; bi < B; ++bi)
    TORCH_CHECK(l1.data_ptr<int64_t>()[bi] >= 0 && l1.data_ptr<int64_t>()[bi] <= N &&
                    l2.data_ptr<int64_t>()[bi] >= 0 && l2.data_ptr<int64_t>()[bi] <= b.size(1),
                "lengths out of range");
  // every entry is written by the kernel (empty, not zeros: no extra thread-pool pass)
  auto dists = at::empty({B, N, k}, a.options());
  auto idx = at::empty({B, N, k}, a.options().dtype(at::kLong));
  if (B == 0 || N == 0) return {dists, idx};
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "pcgen_knn_cpu", [&] {
    knn_kernel<scalar_t>(a, b, l1.data_ptr<int64_t>(), l2.data_ptr<int64_t>(), k, max_dist2, dists,
                         idx);
  });
  return {dists, idx};
}

std::tuple<at::Tensor, at::Tensor> knn_cpu(const at::Tensor& p1, const at::Tensor& p2,
                                           const at::Tensor& lengths1, const at::Tensor& lengths2,
                                           int64_t k) {
  return knn_common(p1, p2, lengths1, lengths2, k, std::numeric_limits<double>::infinity());
}

std::tuple<at::Tensor, at::Tensor> ball_query_cpu(const at::Tensor& p1, const at::Tensor& p2,
                                                  const at::Tensor& lengths1,
                                                  const at::Tensor& lengths2, int64_t k,
                                                  double radius) {
  TORCH_CHECK(radius > 0, "radius must be positive");
  return knn_common(p1, p2, lengths1, lengths2, k, radius * radius);
}

// Gradients of dists[b,n,j] = |p1[b,n] - p2[b,idx[b,n,j]]|^2 w.r.t. p1 and p2 in one pass.
// As a handful of torch ops this is several thread-pool round trips per call, which on a
// busy machine cost more than the whole forward; here clouds go in parallel (each cloud's
// scatter into grad_p2 stays on one thread, so no atomics).
template <typename T>
void knn_backward_kernel(const at::Tensor& p1, const at::Tensor& p2, const at::Tensor& idx,
                         const at::Tensor& grad, at::Tensor& g1, at::Tensor& g2) {
  const int64_t B = p1.size(0), N = p1.size(1), M = p2.size(1), D = p1.size(2), k = idx.size(2);
  const T* a = p1.data_ptr<T>();
  const T* b = p2.data_ptr<T>();
  const int64_t* ix = idx.data_ptr<int64_t>();
  const T* g = grad.data_ptr<T>();
  T* ga = g1.data_ptr<T>();
  T* gb = g2.data_ptr<T>();
  auto body = [&](int64_t s, int64_t e) {
    // zero here rather than with zeros_like: one less thread-pool round trip
    std::fill(ga + s * N * D, ga + e * N * D, T(0));
    std::fill(gb + s * M * D, gb + e * M * D, T(0));
    for (int64_t bi = s; bi < e; ++bi)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = bi * N + n;
        for (int64_t j = 0; j < k; ++j) {
          const int64_t m = ix[t * k + j];
          if (m < 0) continue;
          const T w = T(2) * g[t * k + j];
          for (int64_t c = 0; c < D; ++c) {
            const T diff = w * (a[t * D + c] - b[(bi * M + m) * D + c]);
            ga[t * D + c] += diff;
            gb[(bi * M + m) * D + c] -= diff;
          }
        }
      }
  };
  if (double(B) * N * k * D < 2e6)
    body(0, B);
  else
    at::parallel_for(0, B, 1, body);
}

std::tuple<at::Tensor, at::Tensor> knn_backward_cpu(const at::Tensor& p1, const at::Tensor& p2,
                                                    const at::Tensor& idx,
                                                    const at::Tensor& grad_dists) {
  TORCH_CHECK(idx.dim() == 3 && grad_dists.sizes() == idx.sizes(), "idx/grad_dists shape mismatch");
  auto a = p1.contiguous();
  auto b = p2.contiguous();
  auto ix = idx.contiguous();
  auto g = grad_dists.to(a.scalar_type()).contiguous();
  auto g1 = at::empty_like(a);
  auto g2 = at::empty_like(b);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "pcgen_knn_backward_cpu",
                             [&] { knn_backward_kernel<scalar_t>(a, b, ix, g, g1, g2); });
  return {g1, g2};
}

}  // namespace
}  // namespace pcgen

TORCH_LIBRARY_FRAGMENT(pcgen, m) {
  m.def("knn(Tensor p1, Tensor p2, Tensor lengths1, Tensor lengths2, int k) -> (Tensor, Tensor)");
  m.def("ball_query(Tensor p1, Tensor p2, Tensor lengths1, Tensor lengths2, int k, float radius)"
        " -> (Tensor, Tensor)");
  m.def("knn_backward(Tensor p1, Tensor p2, Tensor idx, Tensor grad_dists) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pcgen, CPU, m) {
  m.impl("knn", &pcgen::knn_cpu);
  m.impl("ball_query", &pcgen::ball_query_cpu);
  m.impl("knn_backward", &pcgen::knn_backward_cpu);
}
