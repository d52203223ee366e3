// Nearest-neighbour search for one point cloud on the CPU.
//
// UniformGrid buckets the (<= 3-D) search points into cubic cells, each cell's
// points stored contiguously (a counting sort by cell), and answers k-NN queries
// by visiting cells in growing Chebyshev shells around the query's cell until
// the k-th best distance is within the distance to the unvisited region. The
// cell size adapts to the cloud: it starts at ~1 point per cell of the bounding
// box and is refined while occupied cells hold many points (surfaces, as in
// LiDAR, occupy few cells of their box). brute_force_knn serves D > 3 and tiny
// clouds. Both keep the k best in a small sorted array (k is small in practice).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "topk_insert.h"

namespace pcgen {

template <typename T>
struct TopK {
  T* d;
  int64_t* i;
  int64_t k;
  int64_t count = 0;
  T limit;  // only distances <= limit are kept (ball query radius^2; inf for knn)

  TopK(T* d_, int64_t* i_, int64_t k_, T limit_) : d(d_), i(i_), k(k_), limit(limit_) {}

  inline T worst() const { return count < k ? limit : d[count - 1]; }

  inline void push(T dist, int64_t idx) { topk_insert(d, i, k, count, limit, dist, idx); }
};

template <typename T>
inline T sqdist(const T* a, const T* b, int64_t D) {
  T s = 0;
  for (int64_t c = 0; c < D; ++c) {
    T t = a[c] - b[c];
    s += t * t;
  }
  return s;
}

template <typename T>
void brute_force_knn(const T* q, const T* pts, int64_t M, int64_t D, TopK<T>& top) {
  for (int64_t j = 0; j < M; ++j) top.push(sqdist(q, pts + j * D, D), j);
}

template <typename T>
class UniformGrid {
 public:
  // pts: M points of dimension D (<= 3), row-major.
  void build(const T* pts, int64_t M, int64_t D) {
    M_ = M;
    D_ = D;
    T lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
    for (int64_t c = 0; c < D; ++c) {
      lo[c] = std::numeric_limits<T>::max();
      hi[c] = std::numeric_limits<T>::lowest();
    }
    for (int64_t j = 0; j < M; ++j)
      for (int64_t c = 0; c < D; ++c) {
        lo[c] = std::min(lo[c], pts[j * D + c]);
        hi[c] = std::max(hi[c], pts[j * D + c]);
      }
    T emax = 0;
    for (int c = 0; c < 3; ++c) emax = std::max(emax, hi[c] - lo[c]);
    if (!(emax > 0)) emax = 1;
    T ext[3];
    double vol = 1;
    int dims = 0;
    for (int c = 0; c < 3; ++c) {
      ext[c] = hi[c] - lo[c];
      if (ext[c] > emax * T(1e-6)) {
        vol *= double(ext[c]);
        ++dims;
      }
      origin_[c] = lo[c];
    }
    if (dims == 0) dims = 1, vol = emax;
    double h = std::pow(vol / std::max<double>(1.0, double(M)), 1.0 / dims);
    const double max_cells = std::max<double>(4096.0, std::min<double>(8.0 * M, double(1 << 24)));
    for (int iter = 0;; ++iter) {
      set_cell(h, ext, max_cells);
      int64_t occupied = count_cells(pts);
      double ratio = double(M) / std::max<int64_t>(occupied, 1);
      if (ratio <= 3.0 || iter >= 3 || double(ncells_) >= max_cells * 0.999) break;
      h *= std::sqrt(2.0 / ratio);  // surfaces: occupied cells grow like 1/h^2
    }
    // counting sort of the points by cell
    start_.assign(ncells_ + 1, 0);
    for (int64_t j = 0; j < M; ++j) ++start_[cell_key_[j] + 1];
    for (int64_t c = 0; c < ncells_; ++c) start_[c + 1] += start_[c];
    std::vector<int32_t> fill(start_.begin(), start_.end() - 1);
    sorted_.resize(M * 3);
    ids_.resize(M);
    for (int64_t j = 0; j < M; ++j) {
      int64_t pos = fill[cell_key_[j]]++;  // M < 2^31
      for (int c = 0; c < 3; ++c) sorted_[pos * 3 + c] = c < D ? pts[j * D + c] : T(0);
      ids_[pos] = j;
    }
    std::vector<int64_t>().swap(cell_key_);
  }

  int64_t num_cells() const { return ncells_; }

  // cell of a query point (clamped into the grid)
  int64_t cell_of(const T* q) const {
    int64_t key = 0;
    for (int c = 2; c >= 0; --c) key = key * g_[c] + clamp_cell(c < D_ ? q[c] : T(0), c);
    return key;
  }

  // k nearest of query q (D coordinates) into top.
  void query(const T* q_in, TopK<T>& top) const {
    if (M_ == 0) return;
    T q[3] = {0, 0, 0};
    for (int64_t c = 0; c < D_; ++c) q[c] = q_in[c];
    int64_t cc[3];
    T out[3];  // how far q lies outside the grid's box, per dimension
    for (int c = 0; c < 3; ++c) {
      cc[c] = clamp_cell(q[c], c);
      T lo = origin_[c], hi = origin_[c] + T(g_[c]) * h_;
      out[c] = std::max(std::max(lo - q[c], q[c] - hi), T(0));
    }
    const int64_t rmax = std::max({g_[0], g_[1], g_[2]});
    for (int64_t r = 0; r <= rmax; ++r) {
      visit_shell(q, cc, r, top);
      // squared distance from q to the part of the grid outside the visited box: the
      // gap to the box face in one dimension plus how far q lies outside the grid in
      // the others (queries off the grid would otherwise grow shells for nothing)
      T b2 = std::numeric_limits<T>::infinity();
      for (int c = 0; c < 3; ++c) {
        T others = 0;
        for (int e = 0; e < 3; ++e) others += e == c ? T(0) : out[e] * out[e];
        if (cc[c] - r > 0) {
          T gap = std::max(q[c] - (origin_[c] + T(cc[c] - r) * h_), T(0));
          b2 = std::min(b2, gap * gap + others);
        }
        if (cc[c] + r < g_[c] - 1) {
          T gap = std::max(origin_[c] + T(cc[c] + r + 1) * h_ - q[c], T(0));
          b2 = std::min(b2, gap * gap + others);
        }
      }
      if (b2 == std::numeric_limits<T>::infinity()) return;  // whole grid visited
      if (top.count == top.k && top.worst() <= b2) return;
      if (b2 > top.limit) return;  // every unvisited point is outside the ball
    }
  }

 private:
  void set_cell(double h, const T* ext, double max_cells) {
    bool finite = std::isfinite(h) && h > 0;
    for (int c = 0; c < 3; ++c) finite = finite && std::isfinite(double(ext[c]));
    if (!finite) {  // inf/NaN coordinates: one cell, i.e. brute force, rather than a bad grid
      g_[0] = g_[1] = g_[2] = 1;
      ncells_ = 1;
      h_ = std::numeric_limits<T>::infinity();
      inv_h_ = 0;
      return;
    }
    for (;;) {
      double n = 1;
      for (int c = 0; c < 3; ++c) {
        g_[c] = std::max<int64_t>(1, int64_t(std::floor(double(ext[c]) / h)) + 1);
        n *= double(g_[c]);
      }
      if (n <= max_cells) break;
      h *= std::cbrt(n / max_cells) * 1.001;
    }
    h_ = T(h);
    inv_h_ = T(1.0 / h);
    ncells_ = g_[0] * g_[1] * g_[2];
  }

  inline int64_t clamp_cell(T v, int c) const {
    T f = (v - origin_[c]) * inv_h_;
    if (!(f > 0)) return 0;  // also catches NaN
    int64_t i = f >= T(g_[c]) ? g_[c] - 1 : int64_t(f);
    return std::min(i, g_[c] - 1);
  }

  int64_t count_cells(const T* pts) {
    cell_key_.resize(M_);
    std::vector<uint8_t> seen(ncells_, 0);
    int64_t occupied = 0;
    for (int64_t j = 0; j < M_; ++j) {
      int64_t key = 0;
      for (int c = 2; c >= 0; --c) key = key * g_[c] + clamp_cell(c < D_ ? pts[j * D_ + c] : T(0), c);
      cell_key_[j] = key;
      occupied += !seen[key];
      seen[key] = 1;
    }
    return occupied;
  }

  inline void visit_cell(const T* q, int64_t x, int64_t y, int64_t z, TopK<T>& top) const {
    // skip cells whose box is already farther than the k-th best
    const int64_t xyz[3] = {x, y, z};
    T md = 0;
    for (int c = 0; c < 3; ++c) {
      T lo = origin_[c] + T(xyz[c]) * h_;
      T t = std::max(std::max(lo - q[c], q[c] - (lo + h_)), T(0));
      md += t * t;
    }
    if (md > top.worst()) return;
    int64_t key = (z * g_[1] + y) * g_[0] + x;
    for (int64_t p = start_[key], e = start_[key + 1]; p < e; ++p) {
      const T* s = &sorted_[p * 3];
      T a = q[0] - s[0], b = q[1] - s[1], c = q[2] - s[2];
      T d = a * a + b * b + c * c;
      if (d <= top.worst()) top.push(d, ids_[p]);
    }
  }

  void visit_shell(const T* q, const int64_t* cc, int64_t r, TopK<T>& top) const {
    int64_t z0 = std::max<int64_t>(cc[2] - r, 0), z1 = std::min(cc[2] + r, g_[2] - 1);
    int64_t y0 = std::max<int64_t>(cc[1] - r, 0), y1 = std::min(cc[1] + r, g_[1] - 1);
    int64_t x0 = std::max<int64_t>(cc[0] - r, 0), x1 = std::min(cc[0] + r, g_[0] - 1);
    for (int64_t z = z0; z <= z1; ++z) {
      bool zface = (z == cc[2] - r || z == cc[2] + r);
      for (int64_t y = y0; y <= y1; ++y) {
        if (zface || y == cc[1] - r || y == cc[1] + r) {
          for (int64_t x = x0; x <= x1; ++x) visit_cell(q, x, y, z, top);
        } else {
          if (cc[0] - r >= 0) visit_cell(q, cc[0] - r, y, z, top);
          if (r > 0 && cc[0] + r < g_[0]) visit_cell(q, cc[0] + r, y, z, top);
        }
      }
    }
  }

  int64_t M_ = 0, D_ = 3;
  int64_t g_[3] = {1, 1, 1};
  int64_t ncells_ = 1;
  T origin_[3] = {0, 0, 0};
  T h_ = 1, inv_h_ = 1;
  std::vector<int32_t> start_;
  std::vector<T> sorted_;
  std::vector<int64_t> ids_;
  std::vector<int64_t> cell_key_;
};

}  // namespace pcgen
