// Reductions over the middle axis of a contiguous (outer, size, inner) block.
//
// Two memory layouts cover every case the op layer hands us:
//  - inner == 1 ("rows"): each output reads one contiguous row. Sixteen independent
//    accumulators let the compiler vectorise without reassociating (no fast-math), and
//    merging them pairwise keeps long sums accurate.
//  - inner > 1 ("columns"): each output reads a strided column; a tile of neighbouring
//    columns is accumulated together so every load is a contiguous run.
// Floating sums accumulate in double (f32 inputs included: the loop stays memory-bound and
// 10^7-term sums stay exact to ~1e-9), integral sums in int64. Long rows/columns are split
// into fixed chunks whose partials are merged in order, so results do not depend on the
// thread count (bit-reproducible CPU backend, DESIGN.md §6).
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "ember/backend/cpu.hpp"
#include "ember/core/dispatch.hpp"
// Floating-point exceptions are never enabled in Ember: non-trapping compares let GCC
// if-convert the NaN-aware max/min selects, so those loops vectorise like the sums.
#pragma GCC optimize("no-trapping-math")
#include "elementwise_loops.hpp"
#include "loops.hpp"
#include "reduce_util.hpp"

namespace ember::cpu {

namespace {

// ------------------------------------------------------------------ reduction operators
// Each operator: Acc init(); Acc load(T); Acc step(Acc, Acc); Acc merge(Acc, Acc);
// finish(Acc, n) → value written (converted to the output type).

template <class T>
using wide_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, double, int64_t>;

template <class T>
struct SumOp {
  using Acc = wide_t<T>;
  Acc init() const { return Acc(0); }
  Acc load(T v) const { return static_cast<Acc>(static_cast<compute_t<T>>(v)); }
  Acc step(Acc a, Acc v) const { return a + v; }
  Acc merge(Acc a, Acc b) const { return a + b; }
  Acc finish(Acc a, int64_t) const { return a; }
};

template <class T>
struct MeanOp : SumOp<T> {
  using Acc = double;
  double finish(double a, int64_t n) const { return a / static_cast<double>(n); }
};

template <class T>
struct ProdOp {
  using Acc = wide_t<T>;
  Acc init() const { return Acc(1); }
  Acc load(T v) const { return static_cast<Acc>(static_cast<compute_t<T>>(v)); }
  Acc step(Acc a, Acc v) const { return a * v; }
  Acc merge(Acc a, Acc b) const { return a * b; }
  Acc finish(Acc a, int64_t) const { return a; }
};

template <class T>
struct MaxOp {
  static constexpr int kExtreme = 1;  // rows of f32/f64 go through extreme_row
  using Acc = compute_t<T>;
  Acc init() const { return lowest_of<Acc>(); }
  Acc load(T v) const { return static_cast<Acc>(v); }
  // NaN wins (propagates), as torch.max.
  Acc step(Acc a, Acc v) const { return max_nan(a, v); }
  Acc merge(Acc a, Acc b) const { return max_nan(a, b); }
  Acc finish(Acc a, int64_t) const { return a; }
};

template <class T>
struct MinOp {
  static constexpr int kExtreme = -1;
  using Acc = compute_t<T>;
  Acc init() const { return highest_of<Acc>(); }
  Acc load(T v) const { return static_cast<Acc>(v); }
  Acc step(Acc a, Acc v) const { return min_nan(a, v); }
  Acc merge(Acc a, Acc b) const { return min_nan(a, b); }
  Acc finish(Acc a, int64_t) const { return a; }
};

template <class T>
struct Norm1Op : SumOp<T> {
  using Acc = double;
  double step(double a, double v) const { return a + std::fabs(v); }
};

template <class T>
struct Norm2Op : SumOp<T> {
  using Acc = double;
  double step(double a, double v) const { return a + v * v; }
  double finish(double a, int64_t) const { return std::sqrt(a); }
};

template <class T>
struct Norm0Op : SumOp<T> {
  using Acc = double;
  double step(double a, double v) const { return a + (v != 0.0 ? 1.0 : 0.0); }
};

template <class T>
struct NormPOp : SumOp<T> {
  using Acc = double;
  double p = 2.0;
  double step(double a, double v) const { return a + std::pow(std::fabs(v), p); }
  double finish(double a, int64_t) const { return std::pow(a, 1.0 / p); }
};

template <class T>
struct NormInfOp {
  using Acc = double;
  double init() const { return 0.0; }
  double load(T v) const { return std::fabs(static_cast<double>(static_cast<compute_t<T>>(v))); }
  double step(double a, double v) const { return max_nan(a, v); }
  double merge(double a, double b) const { return step(a, b); }
  double finish(double a, int64_t) const { return a; }
};

template <class T>
struct NormNegInfOp : NormInfOp<T> {
  double init() const { return std::numeric_limits<double>::infinity(); }
  double step(double a, double v) const { return min_nan(a, v); }
  double merge(double a, double b) const { return step(a, b); }
};

// ------------------------------------------------------------------ drivers

/// Reduces one contiguous row of n elements.
template <class Op>
constexpr int extreme_of() {
  if constexpr (requires { Op::kExtreme; })
    return Op::kExtreme;
  else
    return 0;
}

template <class T, class Op>
typename Op::Acc reduce_row(const T* x, int64_t n, const Op& op) {
  using Acc = typename Op::Acc;
  constexpr int kLanes = 16;
  if (n < kLanes) {
    // Short rows (sums over a small trailing dim): lane setup and merging would dominate.
    Acc a = op.init();
    for (int64_t i = 0; i < n; ++i) a = op.step(a, op.load(x[i]));
    return a;
  }
  if constexpr (std::is_floating_point_v<T> && extreme_of<Op>() != 0) {
    return extreme_row<T, (extreme_of<Op>() > 0)>(x, n);
  }
  Acc lanes[kLanes];
  for (auto& l : lanes) l = op.init();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] = op.step(lanes[j], op.load(x[i + j]));
  Acc tail = op.init();
  for (; i < n; ++i) tail = op.step(tail, op.load(x[i]));
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) lanes[j] = op.merge(lanes[j], lanes[j + w]);
  return op.merge(lanes[0], tail);
}

template <class T, class Op, class Out>
void reduce_rows(const T* x, Out* out, const ReduceGeom& g, const Op& op) {
  using Acc = typename Op::Acc;
  const int64_t rows = g.outer, n = g.size;
  const int64_t nchunks = std::max<int64_t>(1, ceil_div(n, kChunk));
  if (nchunks == 1) {
    parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) out[r] = to_out<Out>(op.finish(reduce_row(x + r * n, n, op), n));
    });
    return;
  }
  // Long rows: fixed chunks in parallel, merged in order (same result for any thread count).
  std::unique_ptr<Acc[]> part(new Acc[static_cast<size_t>(rows * nchunks)]);
  parallel_for(rows * nchunks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t r = i / nchunks, c = i % nchunks;
      const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
      part[i] = reduce_row(x + r * n + b, e - b, op);
    }
  });
  for (int64_t r = 0; r < rows; ++r) {
    Acc a = part[r * nchunks];
    for (int64_t c = 1; c < nchunks; ++c) a = op.merge(a, part[r * nchunks + c]);
    out[r] = to_out<Out>(op.finish(a, n));
  }
}

template <class T, class Op, class Out>
void reduce_cols(const T* x, Out* out, const ReduceGeom& g, const Op& op) {
  using Acc = typename Op::Acc;
  const int64_t A = g.outer, R = g.size, B = g.inner;
  const int64_t ntiles = ceil_div(B, kTile);
  const int64_t width = std::min(B, kTile);
  const int64_t rchunk = std::max<int64_t>(1, kChunk / width);
  const int64_t nchunks = std::max<int64_t>(1, ceil_div(R, rchunk));
  // Accumulates rows [r0, r1) of column tile t of block a into acc[0, w).
  auto run = [&](int64_t a, int64_t t, int64_t r0, int64_t r1, Acc* acc) {
    const int64_t b0 = t * kTile, w = std::min(kTile, B - b0);
    for (int64_t j = 0; j < w; ++j) acc[j] = op.init();
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = x + (a * R + r) * B + b0;
      for (int64_t j = 0; j < w; ++j) acc[j] = op.step(acc[j], op.load(row[j]));
    }
    return w;
  };
  const int64_t items = A * ntiles * nchunks;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, width * std::min(R, rchunk)));
  if (nchunks == 1) {
    parallel_for(items, grain, [&](int64_t i0, int64_t i1) {
      Acc acc[kTile];
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t a = i / ntiles, t = i % ntiles;
        const int64_t w = run(a, t, 0, R, acc);
        for (int64_t j = 0; j < w; ++j) out[a * B + t * kTile + j] = to_out<Out>(op.finish(acc[j], R));
      }
    });
    return;
  }
  std::unique_ptr<Acc[]> part(new Acc[static_cast<size_t>(items * kTile)]);
  parallel_for(items, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t c = i % nchunks, at = i / nchunks;
      const int64_t r0 = c * rchunk, r1 = std::min(R, r0 + rchunk);
      run(at / ntiles, at % ntiles, r0, r1, part.get() + i * kTile);
    }
  });
  for (int64_t at = 0; at < A * ntiles; ++at) {
    const int64_t a = at / ntiles, t = at % ntiles, b0 = t * kTile, w = std::min(kTile, B - b0);
    Acc* first = part.get() + at * nchunks * kTile;
    for (int64_t c = 1; c < nchunks; ++c)
      for (int64_t j = 0; j < w; ++j) first[j] = op.merge(first[j], first[c * kTile + j]);
    for (int64_t j = 0; j < w; ++j) out[a * B + b0 + j] = to_out<Out>(op.finish(first[j], R));
  }
}

/// Narrow columns (1 < inner < 16): each (size, inner) block is one contiguous run read with
/// L = a multiple of inner lanes (16..30), so lane j always sees column j % inner; the lanes
/// of a column are merged at the end. Keeps the loads contiguous and the loop vectorisable,
/// where a column tile of width 2 would spend its time on loop overhead.
template <class T, class Op, class Out>
void reduce_narrow_cols(const T* x, Out* out, const ReduceGeom& g, const Op& op) {
  using Acc = typename Op::Acc;
  const int64_t A = g.outer, R = g.size, B = g.inner;
  const int64_t L = B * ceil_div(16, B);
  const int64_t n = R * B;
  parallel_for(A, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, n)), [&](int64_t a0, int64_t a1) {
    Acc lanes[32];
    for (int64_t a = a0; a < a1; ++a) {
      const T* p = x + a * n;
      for (int64_t j = 0; j < L; ++j) lanes[j] = op.init();
      int64_t i = 0;
      for (; i + L <= n; i += L)
        for (int64_t j = 0; j < L; ++j) lanes[j] = op.step(lanes[j], op.load(p[i + j]));
      for (int64_t j = 0; i + j < n; ++j) lanes[j] = op.step(lanes[j], op.load(p[i + j]));
      for (int64_t b = 0; b < B; ++b) {
        Acc acc = lanes[b];
        for (int64_t j = b + B; j < L; j += B) acc = op.merge(acc, lanes[j]);
        out[a * B + b] = to_out<Out>(op.finish(acc, R));
      }
    }
  });
}

template <class T, class Out, class Op>
void run_reduce(const Tensor& out, const Tensor& in, const ReduceGeom& g, const Op& op) {
  const T* x = static_cast<const T*>(in.data_ptr());
  Out* o = static_cast<Out*>(out.data_ptr());
  if (g.outer * g.inner == 0) return;
  if (g.inner == 1)
    reduce_rows(x, o, g, op);
  else if (g.inner < 16)
    reduce_narrow_cols(x, o, g, op);
  else
    reduce_cols(x, o, g, op);
}

// ------------------------------------------------------------------ arg reductions

template <class T>
void arg_kernel(T* vals, int64_t* idx, const T* x, const ReduceGeom& g, bool is_max) {
  using C = compute_t<T>;
  const int64_t A = g.outer, R = g.size, B = g.inner;
  // NaN counts as the extreme (first NaN wins); ties keep the first index.
  auto better = [is_max](C v, C best) { return !is_nan(best) && (is_nan(v) || (is_max ? v > best : v < best)); };
  if (B == 1) {
    parallel_for(A, std::max<int64_t>(1, kGrain / std::max<int64_t>(R, 1)), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        const T* row = x + a * R;
        C best = static_cast<C>(row[0]);
        int64_t bi = 0;
        for (int64_t k = 1; k < R; ++k) {
          C v = static_cast<C>(row[k]);
          if (better(v, best)) {
            best = v;
            bi = k;
          }
        }
        if (vals) vals[a] = row[bi];
        idx[a] = bi;
      }
    });
    return;
  }
  const int64_t ntiles = ceil_div(B, kTile);
  parallel_for(A * ntiles, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, R * std::min(B, kTile))),
               [&](int64_t i0, int64_t i1) {
                 C best[kTile];
                 int64_t bi[kTile];
                 for (int64_t i = i0; i < i1; ++i) {
                   const int64_t a = i / ntiles, b0 = (i % ntiles) * kTile, w = std::min(kTile, B - b0);
                   const T* base = x + a * R * B + b0;
                   for (int64_t j = 0; j < w; ++j) {
                     best[j] = static_cast<C>(base[j]);
                     bi[j] = 0;
                   }
                   for (int64_t k = 1; k < R; ++k) {
                     const T* row = base + k * B;
                     for (int64_t j = 0; j < w; ++j) {
                       C v = static_cast<C>(row[j]);
                       if (better(v, best[j])) {
                         best[j] = v;
                         bi[j] = k;
                       }
                     }
                   }
                   for (int64_t j = 0; j < w; ++j) {
                     if (vals) vals[a * B + b0 + j] = static_cast<T>(best[j]);
                     idx[a * B + b0 + j] = bi[j];
                   }
                 }
               });
}

// ------------------------------------------------------------------ variance

template <class T>
struct SqDevOp : SumOp<T> {
  using Acc = double;
  double mean = 0.0;
  double step(double a, double v) const { return a + (v - mean) * (v - mean); }
};

template <class T>
void var_kernel(T* out, const T* x, const ReduceGeom& g, int64_t correction, bool take_sqrt) {
  const int64_t A = g.outer, R = g.size, B = g.inner;
  const double denom = static_cast<double>(std::max<int64_t>(0, R - correction));
  // Two passes (mean, then squared deviations) in double: no cancellation for data far from 0.
  if (B == 1) {
    parallel_for(A, std::max<int64_t>(1, kGrain / std::max<int64_t>(R, 1) / 2), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        const T* row = x + a * R;
        SqDevOp<T> op;
        op.mean = reduce_row(row, R, SumOp<T>()) / static_cast<double>(R);
        const double v = reduce_row(row, R, op) / denom;
        out[a] = to_out<T>(take_sqrt ? std::sqrt(v) : v);
      }
    });
    return;
  }
  const int64_t ntiles = ceil_div(B, kTile);
  parallel_for(A * ntiles, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, 2 * R * std::min(B, kTile))),
               [&](int64_t i0, int64_t i1) {
                 double mean[kTile], m2[kTile];
                 for (int64_t i = i0; i < i1; ++i) {
                   const int64_t a = i / ntiles, b0 = (i % ntiles) * kTile, w = std::min(kTile, B - b0);
                   const T* base = x + a * R * B + b0;
                   for (int64_t j = 0; j < w; ++j) mean[j] = m2[j] = 0.0;
                   for (int64_t k = 0; k < R; ++k)
                     for (int64_t j = 0; j < w; ++j)
                       mean[j] += static_cast<double>(static_cast<compute_t<T>>(base[k * B + j]));
                   for (int64_t j = 0; j < w; ++j) mean[j] /= static_cast<double>(R);
                   for (int64_t k = 0; k < R; ++k)
                     for (int64_t j = 0; j < w; ++j) {
                       double d = static_cast<double>(static_cast<compute_t<T>>(base[k * B + j])) - mean[j];
                       m2[j] += d * d;
                     }
                   for (int64_t j = 0; j < w; ++j) {
                     const double v = m2[j] / denom;
                     out[a * B + b0 + j] = to_out<T>(take_sqrt ? std::sqrt(v) : v);
                   }
                 }
               });
}

// ------------------------------------------------------------------ logsumexp

template <class T>
struct ExpSumOp : SumOp<T> {
  using Acc = double;
  using C = compute_t<T>;
  C shift = 0;
  double load(T v) const { return static_cast<double>(std::exp(static_cast<C>(v) - shift)); }
};

/// The max to subtract: the max itself when finite; 0 for ±inf/NaN so that inf stays inf,
/// all -inf gives -inf, and NaN propagates.
template <class C>
C lse_shift(C m) {
  return std::isfinite(static_cast<double>(m)) ? m : C(0);
}

/// f32 rows, one clone per ISA: the exp specialised for x - max <= 0, float lanes per block
/// of 1024, blocks added in double.
EMBER_SIMD_CLONES float logsumexp_row_f32(const float* __restrict row, int64_t n) {
  const float m = extreme_row<float, true>(row, n);
  if (!std::isfinite(m)) return m;  // NaN, +inf, or a row of -inf: the result is the max itself
  double s = 0.0;
  for (int64_t b = 0; b < n; b += 1024) {
    const int64_t e = std::min(n, b + 1024);
    float lanes[16] = {};
    int64_t i = b;
    for (; i + 16 <= e; i += 16)
      for (int j = 0; j < 16; ++j) lanes[j] += exp_nonpos(row[i + j] - m);
    for (; i < e; ++i) lanes[0] += exp_nonpos(row[i] - m);
    for (int j = 0; j < 16; ++j) s += static_cast<double>(lanes[j]);
  }
  return static_cast<float>(static_cast<double>(m) + std::log(s));
}

template <class T>
void logsumexp_kernel(T* out, const T* x, const ReduceGeom& g) {
  using C = compute_t<T>;
  const int64_t A = g.outer, R = g.size, B = g.inner;
  if (B == 1) {
    parallel_for(A, std::max<int64_t>(1, kGrain / std::max<int64_t>(R, 1) / 4), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        const T* row = x + a * R;
        if constexpr (std::is_same_v<T, float>) {
          if (R > 0) {
            out[a] = logsumexp_row_f32(row, R);
            continue;
          }
        }
        ExpSumOp<T> op;
        op.shift = lse_shift(R > 0 ? reduce_row(row, R, MaxOp<T>()) : C(0));
        out[a] = to_out<T>(std::log(reduce_row(row, R, op)) + static_cast<double>(op.shift));
      }
    });
    return;
  }
  const int64_t ntiles = ceil_div(B, kTile);
  parallel_for(A * ntiles, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, 4 * R * std::min(B, kTile))),
               [&](int64_t i0, int64_t i1) {
                 C mx[kTile];
                 double s[kTile];
                 MaxOp<T> max_op;
                 for (int64_t i = i0; i < i1; ++i) {
                   const int64_t a = i / ntiles, b0 = (i % ntiles) * kTile, w = std::min(kTile, B - b0);
                   const T* base = x + a * R * B + b0;
                   for (int64_t j = 0; j < w; ++j) {
                     mx[j] = max_op.init();
                     s[j] = 0.0;
                   }
                   for (int64_t k = 0; k < R; ++k)
                     for (int64_t j = 0; j < w; ++j) mx[j] = max_op.step(mx[j], static_cast<C>(base[k * B + j]));
                   for (int64_t j = 0; j < w; ++j) mx[j] = lse_shift(R > 0 ? mx[j] : C(0));
                   for (int64_t k = 0; k < R; ++k)
                     for (int64_t j = 0; j < w; ++j) s[j] += std::exp(static_cast<C>(base[k * B + j]) - mx[j]);
                   for (int64_t j = 0; j < w; ++j)
                     out[a * B + b0 + j] = to_out<T>(std::log(s[j]) + static_cast<double>(mx[j]));
                 }
               });
}

// ------------------------------------------------------------------ cumsum

template <class T, class Out>
void cumsum_kernel(Out* out, const T* x, const ReduceGeom& g, bool reverse) {
  using Acc = wide_t<T>;
  const int64_t A = g.outer, R = g.size, B = g.inner;
  // Position of the k-th step along the axis (suffix sums walk it backwards).
  auto pos = [R, reverse](int64_t k) { return reverse ? R - 1 - k : k; };
  if (B == 1) {
    parallel_for(A, std::max<int64_t>(1, kGrain / std::max<int64_t>(R, 1)), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        Acc acc = 0;
        for (int64_t k = 0; k < R; ++k) {
          const int64_t i = a * R + pos(k);
          acc += static_cast<Acc>(static_cast<compute_t<T>>(x[i]));
          out[i] = to_out<Out>(acc);
        }
      }
    });
    return;
  }
  const int64_t ntiles = ceil_div(B, kTile);
  parallel_for(A * ntiles, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, R * std::min(B, kTile))),
               [&](int64_t i0, int64_t i1) {
                 Acc acc[kTile];
                 for (int64_t i = i0; i < i1; ++i) {
                   const int64_t a = i / ntiles, b0 = (i % ntiles) * kTile, w = std::min(kTile, B - b0);
                   for (int64_t j = 0; j < w; ++j) acc[j] = 0;
                   for (int64_t k = 0; k < R; ++k) {
                     const int64_t off = (a * R + pos(k)) * B + b0;
                     for (int64_t j = 0; j < w; ++j) {
                       acc[j] += static_cast<Acc>(static_cast<compute_t<T>>(x[off + j]));
                       out[off + j] = to_out<Out>(acc[j]);
                     }
                   }
                 }
               });
}

}  // namespace

// ------------------------------------------------------------------ entry points

void reduce(const Tensor& out, const Tensor& in, const ReduceGeom& g, ReduceKind kind, double p) {
  dispatch(in.dtype(), "reduce", [&]<class T>() {
    constexpr bool kFloat = std::is_floating_point_v<compute_t<T>>;
    using SumOut = std::conditional_t<kFloat, T, int64_t>;
    switch (kind) {
      case ReduceKind::kSum: run_reduce<T, SumOut>(out, in, g, SumOp<T>()); return;
      case ReduceKind::kProd: run_reduce<T, SumOut>(out, in, g, ProdOp<T>()); return;
      case ReduceKind::kMax: run_reduce<T, T>(out, in, g, MaxOp<T>()); return;
      case ReduceKind::kMin: run_reduce<T, T>(out, in, g, MinOp<T>()); return;
      default: break;
    }
    if constexpr (kFloat) {
      switch (kind) {
        case ReduceKind::kMean: run_reduce<T, T>(out, in, g, MeanOp<T>()); return;
        case ReduceKind::kNormInf: run_reduce<T, T>(out, in, g, NormInfOp<T>()); return;
        case ReduceKind::kNormNegInf: run_reduce<T, T>(out, in, g, NormNegInfOp<T>()); return;
        case ReduceKind::kNormP:
          if (p == 1.0)
            run_reduce<T, T>(out, in, g, Norm1Op<T>());
          else if (p == 2.0)
            run_reduce<T, T>(out, in, g, Norm2Op<T>());
          else if (p == 0.0)
            run_reduce<T, T>(out, in, g, Norm0Op<T>());
          else {
            NormPOp<T> op;
            op.p = p;
            run_reduce<T, T>(out, in, g, op);
          }
          return;
        default: break;
      }
    }
    EMBER_THROW(DTypeError, "reduce: dtype ", dtype_name(in.dtype()), " is not supported by this reduction");
  });
}

void reduce_arg(const Tensor& values, const Tensor& indices, const Tensor& in, const ReduceGeom& g, bool is_max) {
  if (g.outer * g.inner == 0) return;
  dispatch(in.dtype(), "reduce_arg", [&]<class T>() {
    arg_kernel<T>(values.defined() ? static_cast<T*>(values.data_ptr()) : nullptr,
                  static_cast<int64_t*>(indices.data_ptr()), static_cast<const T*>(in.data_ptr()), g, is_max);
  });
}

void var(const Tensor& out, const Tensor& in, const ReduceGeom& g, int64_t correction, bool take_sqrt) {
  if (g.outer * g.inner == 0) return;
  dispatch<kFloatingTypes>(in.dtype(), "var", [&]<class T>() {
    var_kernel<T>(static_cast<T*>(out.data_ptr()), static_cast<const T*>(in.data_ptr()), g, correction, take_sqrt);
  });
}

void logsumexp(const Tensor& out, const Tensor& in, const ReduceGeom& g) {
  if (g.outer * g.inner == 0) return;
  dispatch<kFloatingTypes>(in.dtype(), "logsumexp", [&]<class T>() {
    logsumexp_kernel<T>(static_cast<T*>(out.data_ptr()), static_cast<const T*>(in.data_ptr()), g);
  });
}

void cumsum(const Tensor& out, const Tensor& in, const ReduceGeom& g, bool reverse) {
  if (g.outer * g.size * g.inner == 0) return;
  dispatch(in.dtype(), "cumsum", [&]<class T>() {
    using Out = std::conditional_t<std::is_floating_point_v<compute_t<T>>, T, int64_t>;
    cumsum_kernel<T, Out>(static_cast<Out*>(out.data_ptr()), static_cast<const T*>(in.data_ptr()), g, reverse);
  });
}

void scatter_reduced(const Tensor& gx, const Tensor& gy, const Tensor& indices, const ReduceGeom& g) {
  const int64_t A = g.outer, R = g.size, B = g.inner;
  const int64_t* idx = static_cast<const int64_t*>(indices.data_ptr());
  dispatch<kFloatingTypes>(gx.dtype(), "scatter_reduced", [&]<class T>() {
    T* dst = static_cast<T*>(gx.data_ptr());
    const T* src = static_cast<const T*>(gy.data_ptr());
    parallel_for(A, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, B)), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a)
        for (int64_t b = 0; b < B; ++b) dst[(a * R + idx[a * B + b]) * B + b] = src[a * B + b];
    });
  });
}

}  // namespace ember::cpu
