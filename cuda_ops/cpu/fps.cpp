// Farthest point sampling on the CPU.
//
// Schema: farthest_point_sample(points (B,N,D), lengths (B,), n, start_idx (B,)) -> idx (B,n),
// -1 past a cloud's length. Parallel over clouds; a single large cloud is instead split
// across threads inside each step (arg-max per chunk, then over chunks). Ties pick the
// lowest index, as torch.argmax does in the reference. A picked point's distance becomes -1,
// so duplicates (distance 0 to a pick) still yield n distinct indices while n <= length.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <limits>
#include <vector>

namespace pcgen {
namespace {

template <typename T>
void fps_one(const T* pts, int64_t L, int64_t D, int64_t n, int64_t start, int64_t* out,
             bool inner_parallel) {
  std::vector<T> mind(L, std::numeric_limits<T>::infinity());
  int64_t cur = std::min<int64_t>(std::max<int64_t>(start, 0), L - 1);
  const int64_t nsel = std::min(n, L);
  const int64_t chunk = 8192;
  const int64_t nchunks = (L + chunk - 1) / chunk;
  std::vector<T> best_d(nchunks);
  std::vector<int64_t> best_i(nchunks);
  for (int64_t s = 0; s < nsel; ++s) {
    out[s] = cur;
    const T* c = pts + cur * D;
    auto step = [&](int64_t cs, int64_t ce) {
      for (int64_t ch = cs; ch < ce; ++ch) {
        T bd = -1;
        int64_t bi = 0;
        for (int64_t j = ch * chunk, e = std::min(L, (ch + 1) * chunk); j < e; ++j) {
          const T* p = pts + j * D;
          T d = 0;
          for (int64_t k = 0; k < D; ++k) {
            T t = p[k] - c[k];
            d += t * t;
          }
          T m = j == cur ? T(-1) : std::min(mind[j], d);  // picked: never again, even at distance 0
          mind[j] = m;
          if (m > bd) bd = m, bi = j;
        }
        best_d[ch] = bd;
        best_i[ch] = bi;
      }
    };
    if (inner_parallel)
      at::parallel_for(0, nchunks, 1, step);
    else
      step(0, nchunks);
    T bd = -1;
    for (int64_t ch = 0; ch < nchunks; ++ch)
      if (best_d[ch] > bd) bd = best_d[ch], cur = best_i[ch];
  }
  for (int64_t s = nsel; s < n; ++s) out[s] = -1;
}

at::Tensor fps_cpu(const at::Tensor& points, const at::Tensor& lengths, int64_t n,
                   const at::Tensor& start_idx) {
  TORCH_CHECK(points.dim() == 3, "points must be (B, N, D)");
  TORCH_CHECK(n >= 0, "n must be >= 0");
  auto p = points.contiguous();
  auto len = lengths.to(at::kLong).contiguous();
  auto st = start_idx.to(at::kLong).contiguous();
  const int64_t B = p.size(0), N = p.size(1), D = p.size(2);
  auto out = at::full({B, n}, -1, p.options().dtype(at::kLong));
  if (B == 0 || N == 0 || n == 0) return out;
  const int64_t* L = len.data_ptr<int64_t>();
  TORCH_CHECK(len.numel() == B && st.numel() == B, "lengths and start_idx must be (B,)");
  for (int64_t b = 0; b < B; ++b) TORCH_CHECK(L[b] >= 0 && L[b] <= N, "lengths out of range");
  const int64_t* S = st.data_ptr<int64_t>();
  int64_t* O = out.data_ptr<int64_t>();
  const bool inner = B < at::get_num_threads() && N >= 32768;
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "pcgen_fps_cpu", [&] {
    const scalar_t* P = p.data_ptr<scalar_t>();
    auto body = [&](int64_t s, int64_t e) {
      for (int64_t b = s; b < e; ++b)
        if (L[b] > 0) fps_one<scalar_t>(P + b * N * D, L[b], D, n, S[b], O + b * n, inner);
    };
    if (inner || double(B) * N * n * D < 1e6)  // tiny problems: no thread-pool wake-up
      body(0, B);
    else
      at::parallel_for(0, B, 1, body);
  });
  return out;
}

}  // namespace
}  // namespace pcgen

TORCH_LIBRARY_FRAGMENT(pcgen, m) {
  m.def("farthest_point_sample(Tensor points, Tensor lengths, int n, Tensor start_idx) -> Tensor");
}

TORCH_LIBRARY_IMPL(pcgen, CPU, m) { m.impl("farthest_point_sample", &pcgen::fps_cpu); }
