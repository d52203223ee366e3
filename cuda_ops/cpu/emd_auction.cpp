// Earth mover's distance between equal-size point sets by the auction algorithm (CPU).
//
// Bertsekas' forward auction with epsilon-scaling and Gauss-Seidel bidding (one bidder at a
// time, LIFO queue), one cloud per task of at::parallel_for. A bid needs the best and
// second-best value min_j c_ij + p_j; a grid over the objects (about `per_cell` objects per
// cell, cells shaped by the cloud's extent) keeps the minimum price per cell, which bounds whole
// cells from below, so a bid visits a few cells instead of all N objects while returning
// exactly what a full scan would.
//
// Tolerance: epsilon starts at 4x the nearest-neighbour lower bound LB of the mean cost and is
// divided by `scaling` per phase; the phases stop once n * eps <= tol * primal, the primal is
// 0, or eps reaches tol * LB. Auction theory gives primal - OPT <= n * eps, so the cost
// returned is at most a fraction `tol` above the optimum (observed errors are ~100x smaller).
//
// Schema: pcgen::emd_auction(x (B,N,D), y (B,N,D), squared, tol, per_cell, scaling)
//   -> (assignment (B,N) int64: x[b,i] is matched to y[b,assignment[b,i]],
//       bound (B,) float64: the certified relative error bound n * eps / primal).
// Costs are computed in float64 whatever the input dtype.

#include <ATen/Parallel.h>
#include <torch/library.h>
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace {

struct Cloud {
  int64_t n = 0, d = 0;
  std::vector<double> x;   // (N, D) row-major
  std::vector<double> yt;  // (D, N) so object scans vectorize
};

// buf[j] = cost(i, j) for all j.
inline void row_costs(const Cloud& c, int64_t i, bool squared, double* buf) {
  const int64_t n = c.n;
  std::fill(buf, buf + n, 0.0);
  for (int64_t k = 0; k < c.d; ++k) {
    const double xi = c.x[i * c.d + k];
    const double* yk = c.yt.data() + k * n;
    for (int64_t j = 0; j < n; ++j) {
      const double t = xi - yk[j];
      buf[j] += t * t;
    }
  }
  if (!squared)
    for (int64_t j = 0; j < n; ++j) buf[j] = std::sqrt(buf[j]);
}

inline double pair_cost(const Cloud& c, int64_t i, int64_t j, bool squared) {
  double s = 0.0;
  for (int64_t k = 0; k < c.d; ++k) {
    const double t = c.x[i * c.d + k] - c.yt[k * c.n + j];
    s += t * t;
  }
  return squared ? s : std::sqrt(s);
}

struct Best {
  double w1, w2;
  int64_t j1;
};

inline void offer(Best& b, double v, int64_t j) {
  if (v < b.w2) {
    if (v < b.w1) {
      b.w2 = b.w1;
      b.w1 = v;
      b.j1 = j;
    } else {
      b.w2 = v;
    }
  }
}

// A uniform grid over the objects (first min(D, 3) coordinates) with the minimum price per
// cell. For bidder i, dist(x_i, cell box) + min price in the cell bounds c_ij + p_j from
// below for every object j of the cell, so whole cells are skipped once they cannot beat
// the current second-best value. The answer is exactly that of a full scan.
struct Grid {
  int64_t dims = 0, ncell = 1;
  int64_t g[3] = {1, 1, 1};
  double lo[3] = {0, 0, 0}, width[3] = {1, 1, 1};
  std::vector<int64_t> start, items, cell_of;  // CSR: objects of cell c are items[start[c]..start[c+1])
  std::vector<double> box_lo, box_hi;          // (ncell, dims), tight boxes of the cell's objects
  std::vector<double> cellmin;                 // min price per cell

  void build(const Cloud& c, int64_t per_cell) {
    const int64_t n = c.n;
    dims = std::min<int64_t>(c.d, 3);
    const double target = std::max<double>(1.0, double(n) / std::max<int64_t>(per_cell, 1));
    // Cells as cubic as possible: divisions per axis proportional to the extent, so flat
    // patches (ground, roofs) do not end up with a few crowded cells.
    double extent[3] = {0, 0, 0}, logsum = 0.0;
    int64_t live = 0;
    for (int64_t k = 0; k < dims; ++k) {
      const double* yk = c.yt.data() + k * n;
      const auto mm = std::minmax_element(yk, yk + n);
      lo[k] = *mm.first;
      extent[k] = *mm.second - *mm.first;
    }
    double emax = 0.0;
    for (int64_t k = 0; k < dims; ++k) emax = std::max(emax, extent[k]);
    for (int64_t k = 0; k < dims; ++k)
      if (extent[k] > 1e-3 * emax && extent[k] > 0) {
        logsum += std::log(extent[k]);
        ++live;
      }
    const double side = live ? std::exp((logsum - std::log(target)) / live) : 1.0;
    ncell = 1;
    for (int64_t k = 0; k < dims; ++k) {
      g[k] = (extent[k] > 1e-3 * emax && extent[k] > 0)
                 ? std::min<int64_t>(std::max<int64_t>(1, int64_t(std::llround(extent[k] / side))), n)
                 : 1;
      width[k] = std::max(extent[k] / g[k], 1e-300);
      ncell *= g[k];
    }
    cell_of.assign(n, 0);
    std::vector<int64_t> count(ncell + 1, 0);
    for (int64_t j = 0; j < n; ++j) {
      int64_t cell = 0;
      for (int64_t k = 0; k < dims; ++k) {
        int64_t q = int64_t((c.yt[k * n + j] - lo[k]) / width[k]);
        q = std::min(std::max<int64_t>(q, 0), g[k] - 1);
        cell = cell * g[k] + q;
      }
      cell_of[j] = cell;
      ++count[cell + 1];
    }
    start.assign(ncell + 1, 0);
    for (int64_t q = 0; q < ncell; ++q) start[q + 1] = start[q] + count[q + 1];
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    items.assign(n, 0);
    for (int64_t j = 0; j < n; ++j) items[fill[cell_of[j]]++] = j;
    box_lo.assign(ncell * dims, std::numeric_limits<double>::infinity());
    box_hi.assign(ncell * dims, -std::numeric_limits<double>::infinity());
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < dims; ++k) {
        const double v = c.yt[k * n + j];
        box_lo[cell_of[j] * dims + k] = std::min(box_lo[cell_of[j] * dims + k], v);
        box_hi[cell_of[j] * dims + k] = std::max(box_hi[cell_of[j] * dims + k], v);
      }
    cellmin.assign(ncell, std::numeric_limits<double>::infinity());
  }

  void reset_prices(const std::vector<double>& price) {
    for (int64_t q = 0; q < ncell; ++q) {
      double m = std::numeric_limits<double>::infinity();
      for (int64_t t = start[q]; t < start[q + 1]; ++t) m = std::min(m, price[items[t]]);
      cellmin[q] = m;
    }
  }

  // Price of object j rose from `old`; keep the cell minimum exact.
  void raised(int64_t j, double old, const std::vector<double>& price) {
    const int64_t q = cell_of[j];
    if (old > cellmin[q]) return;
    double m = std::numeric_limits<double>::infinity();
    for (int64_t t = start[q]; t < start[q + 1]; ++t) m = std::min(m, price[items[t]]);
    cellmin[q] = m;
  }
};

struct Result {
  std::vector<int64_t> assign;
  double bound = 0.0;
};

Result auction_one(const Cloud& c, bool squared, double tol, int64_t per_cell, double scaling) {
  const int64_t n = c.n;
  Result res;
  res.assign.assign(n, 0);
  if (n == 1) return res;

  // Nearest-neighbour lower bound of the optimal mean cost (sets the epsilon scale).
  std::vector<double> buf(n);
  std::vector<double> colmin(n, std::numeric_limits<double>::infinity());
  double rowmin_sum = 0.0, cmax = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    row_costs(c, i, squared, buf.data());
    double rmin = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      rmin = std::min(rmin, buf[j]);
      colmin[j] = std::min(colmin[j], buf[j]);
      cmax = std::max(cmax, buf[j]);
    }
    rowmin_sum += rmin;
  }
  const double lb = std::max(rowmin_sum, std::accumulate(colmin.begin(), colmin.end(), 0.0)) / n;
  // Epsilon floor: tol * LB alone guarantees primal <= OPT + n*eps <= (1 + tol) OPT. When LB
  // is 0 (shared points) use a tiny fraction of the cost range.
  const double eps_min = std::max(tol * lb, 1e-9 * std::max(cmax, 1e-300));
  double eps = std::max(4.0 * lb, eps_min);

  Grid grid;
  grid.build(c, per_cell);
  const int64_t dims = grid.dims;
  std::vector<double> cell_lb(grid.ncell);

  std::vector<double> price(n, 0.0);
  std::vector<int64_t> owner(n), assign(n);
  std::vector<int64_t> stack;
  stack.reserve(n);
  const int64_t max_bids = int64_t(1) << 40;
  int64_t total_bids = 0;

  for (;;) {
    std::fill(owner.begin(), owner.end(), -1);
    std::fill(assign.begin(), assign.end(), -1);
    stack.clear();
    for (int64_t i = n - 1; i >= 0; --i) stack.push_back(i);
    grid.reset_prices(price);
    while (!stack.empty()) {
      const int64_t i = stack.back();
      stack.pop_back();
      const double* xi = c.x.data() + i * c.d;
      // Lower bound per cell; start from the most promising one.
      int64_t first = 0;
      for (int64_t q = 0; q < grid.ncell; ++q) {
        double s = 0.0;
        for (int64_t k = 0; k < dims; ++k) {
          const double v = xi[k];
          const double t = std::max(std::max(grid.box_lo[q * dims + k] - v, v - grid.box_hi[q * dims + k]), 0.0);
          s += t * t;
        }
        cell_lb[q] = (squared ? s : std::sqrt(s)) + grid.cellmin[q];
        if (cell_lb[q] < cell_lb[first]) first = q;
      }
      Best b{std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity(), -1};
      auto scan_cell = [&](int64_t q) {
        for (int64_t t = grid.start[q]; t < grid.start[q + 1]; ++t) {
          const int64_t j = grid.items[t];
          offer(b, pair_cost(c, i, j, squared) + price[j], j);
        }
      };
      scan_cell(first);
      for (int64_t q = 0; q < grid.ncell; ++q)
        if (q != first && cell_lb[q] < b.w2) scan_cell(q);
      const int64_t j = b.j1;
      const double old = price[j];
      // w2 is infinite only when a single object exists, handled above.
      price[j] += (b.w2 - b.w1) + eps;
      grid.raised(j, old, price);
      const int64_t prev = owner[j];
      if (prev >= 0) {
        assign[prev] = -1;
        stack.push_back(prev);
      }
      owner[j] = i;
      assign[i] = j;
      TORCH_CHECK(++total_bids < max_bids, "emd_auction: no convergence (numerical trouble?)");
    }
    // Stop once n * eps <= tol * primal: then primal - OPT <= n * eps <= tol * primal.
    double primal = 0.0;
    for (int64_t i = 0; i < n; ++i) primal += pair_cost(c, i, assign[i], squared);
    res.bound = primal > 0 ? std::min(1.0, n * eps / primal) : 0.0;
    if (primal <= 0.0 || n * eps <= tol * primal || eps <= eps_min) break;
    eps = std::max(eps / scaling, eps_min);
  }
  res.assign = assign;
  return res;
}

std::tuple<at::Tensor, at::Tensor> emd_auction_cpu(const at::Tensor& x, const at::Tensor& y,
                                                  bool squared, double tol, int64_t per_cell,
                                                  double scaling) {
  TORCH_CHECK(x.dim() == 3 && y.dim() == 3, "emd_auction: x and y must be (B, N, D)");
  TORCH_CHECK(x.sizes() == y.sizes(), "emd_auction: x and y must have the same shape");
  TORCH_CHECK(tol > 0, "emd_auction: tol must be positive");
  TORCH_CHECK(scaling > 1, "emd_auction: scaling must be > 1");
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  auto xd = x.to(at::kDouble).contiguous();
  auto yd = y.to(at::kDouble).contiguous();
  auto assignment = at::empty({B, N}, x.options().dtype(at::kLong));
  auto bound = at::zeros({B}, x.options().dtype(at::kDouble));
  if (N == 0) return {assignment, bound};
  const double* xp = xd.data_ptr<double>();
  const double* yp = yd.data_ptr<double>();
  int64_t* ap = assignment.data_ptr<int64_t>();
  double* gp = bound.data_ptr<double>();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      Cloud c;
      c.n = N;
      c.d = D;
      c.x.assign(xp + b * N * D, xp + (b + 1) * N * D);
      c.yt.resize(N * D);
      for (int64_t j = 0; j < N; ++j)
        for (int64_t k = 0; k < D; ++k) c.yt[k * N + j] = yp[(b * N + j) * D + k];
      Result r = auction_one(c, squared, tol, per_cell, scaling);
      std::copy(r.assign.begin(), r.assign.end(), ap + b * N);
      gp[b] = r.bound;
    }
  });
  return {assignment, bound};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pcgen, m) {
  m.def("emd_auction(Tensor x, Tensor y, bool squared, float tol, int per_cell, float scaling)"
        " -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pcgen, CPU, m) { m.impl("emd_auction", &emd_auction_cpu); }
