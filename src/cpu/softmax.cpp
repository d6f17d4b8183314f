// Softmax / log-softmax along the middle axis of a contiguous (outer, size, inner) block, and
// their fused backward kernels.
//
// Rows (inner == 1) are the hot case (attention scores, logits): three passes over one row
// while it sits in L1/L2 — max, sum of exp(x - max), write — parallel over rows. Subtracting
// the max keeps exp from overflowing; sums accumulate in double so long rows (vocabularies)
// stay accurate. Other layouts go through a column tile so loads stay contiguous.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "ember/backend/cpu.hpp"
#include "ember/core/dispatch.hpp"
// Floating-point exceptions are never enabled in Ember: non-trapping compares let GCC
// if-convert the NaN-aware selects and the range checks of vm::exp, so the loops vectorise.
#pragma GCC optimize("no-trapping-math")
#include "elementwise_loops.hpp"
#include "loops.hpp"
#include "reduce_util.hpp"
#include "vec_math.hpp"

namespace ember::cpu {

namespace {

constexpr int kLanes = 16;

/// Max of a contiguous row (NaN propagates through the comparison chain into the result).
template <class T, class C = compute_t<T>>
C row_max(const T* x, int64_t n) {
  C lanes[kLanes];
  for (auto& l : lanes) l = lowest_of<C>();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const C v = static_cast<C>(x[i + j]);
      lanes[j] = max_nan(lanes[j], v);
    }
  C m = lowest_of<C>();
  for (; i < n; ++i) {
    const C v = static_cast<C>(x[i]);
    m = max_nan(m, v);
  }
  for (int j = 0; j < kLanes; ++j) m = max_nan(m, lanes[j]);
  return m;
}

/// e^x for f32: the vectorisable polynomial of vec_math.hpp (handles every input), exactly 0
/// below the denormal range so masked -inf logits get probability 0.
EMBER_REDUCE_INLINE float fast_exp(float x) {
  const float e = vm::exp(x);
  return x <= -104.0f ? 0.0f : e;
}

inline double fast_exp(double x) { return std::exp(x); }

/// Rows are processed in blocks of kBlock elements: partial sums in C lanes (vectorised),
/// blocks added in double, so a 50k-wide row keeps ~1e-7 relative accuracy.
constexpr int64_t kBlock = 1024;

/// sum_i f(i) over [0, n) with lanes of C per block and a double across blocks.
template <class C, class F>
double lane_sum(int64_t n, F&& f) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    C lanes[kLanes] = {};
    int64_t i = b;
    for (; i + kLanes <= e; i += kLanes)
      for (int j = 0; j < kLanes; ++j) lanes[j] += f(i + j);
    C tail = 0;
    for (; i < e; ++i) tail += f(i);
    for (int w = kLanes / 2; w > 0; w /= 2)
      for (int j = 0; j < w; ++j) lanes[j] += lanes[j + w];
    total += static_cast<double>(lanes[0]) + static_cast<double>(tail);
  }
  return total;
}

/// The hot case, f32 rows, compiled once per ISA (AVX-512, AVX2+FMA, baseline) and picked at
/// load time: max, y = exp(x - max), sum, scale (or x - max - log(sum)).
EMBER_SIMD_CLONES void softmax_rows_f32(float* __restrict y, const float* __restrict x, int64_t rows, int64_t n,
                                        bool log) {
  for (int64_t r = 0; r < rows; ++r, x += n, y += n) {
    const float m = extreme_row<float, true>(x, n);
    if (!std::isfinite(m)) {
      // A NaN or +inf anywhere, or a row of -inf: every output is NaN (as PyTorch's
      // exp(x - max) / sum gives), and x - m would leave exp_nonpos's domain.
      for (int64_t i = 0; i < n; ++i) y[i] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    for (int64_t i = 0; i < n; ++i) y[i] = exp_nonpos(x[i] - m);
    const double sum = sum_row<float>(y, nullptr, n);
    if (log) {
      const float shift = m + static_cast<float>(std::log(sum));
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] - shift;
    } else {
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t i = 0; i < n; ++i) y[i] *= inv;
    }
  }
}

/// Backward of f32 rows: softmax gx = y (gy - <gy, y>); log-softmax gx = gy - exp(y) sum(gy).
EMBER_SIMD_CLONES void softmax_backward_rows_f32(float* __restrict gx, const float* __restrict gy,
                                                 const float* __restrict y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r, gx += n, gy += n, y += n) {
    if (log) {
      const float s = static_cast<float>(sum_row<float>(gy, nullptr, n));
      for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] - fast_exp(y[i]) * s;
    } else {
      const float dot = static_cast<float>(sum_row<float>(gy, y, n));
      for (int64_t i = 0; i < n; ++i) gx[i] = y[i] * (gy[i] - dot);
    }
  }
}

template <class T>
void softmax_row(T* y, const T* x, int64_t n, bool log) {
  using C = compute_t<T>;
  if constexpr (std::is_same_v<T, C>) {
    // f32/f64: four simple passes the compiler vectorises; y holds exp(x - m) in between.
    const C m = extreme_row<C, true>(x, n);
    for (int64_t i = 0; i < n; ++i) y[i] = fast_exp(x[i] - m);
    const double sum = sum_row<C>(y, nullptr, n);
    if (log) {
      const C shift = m + static_cast<C>(std::log(sum));
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] - shift;
    } else {
      const C inv = static_cast<C>(1.0 / sum);
      for (int64_t i = 0; i < n; ++i) y[i] *= inv;
    }
  } else {
    // 16-bit storage: compute in f32, recomputing exp rather than rounding it twice.
    const C m = row_max(x, n);
    const double sum = lane_sum<C>(n, [&](int64_t i) { return fast_exp(static_cast<C>(x[i]) - m); });
    if (log) {
      const C shift = m + static_cast<C>(std::log(sum));
      for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(static_cast<C>(x[i]) - shift);
      return;
    }
    const C inv = static_cast<C>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(fast_exp(static_cast<C>(x[i]) - m) * inv);
  }
}

template <class T>
void softmax_cols(T* y, const T* x, const ReduceGeom& g, int64_t item, bool log) {
  using C = compute_t<T>;
  const int64_t R = g.size, B = g.inner;
  const int64_t ntiles = ceil_div(B, kTile);
  const int64_t a = item / ntiles, b0 = (item % ntiles) * kTile, w = std::min(kTile, B - b0);
  const T* xb = x + a * R * B + b0;
  T* yb = y + a * R * B + b0;
  C mx[kTile];
  double s[kTile];
  for (int64_t j = 0; j < w; ++j) {
    mx[j] = lowest_of<C>();
    s[j] = 0.0;
  }
  for (int64_t k = 0; k < R; ++k)
    for (int64_t j = 0; j < w; ++j) {
      const C v = static_cast<C>(xb[k * B + j]);
      mx[j] = max_nan(mx[j], v);
    }
  for (int64_t k = 0; k < R; ++k)
    for (int64_t j = 0; j < w; ++j) s[j] += fast_exp(static_cast<C>(xb[k * B + j]) - mx[j]);
  if (log) {
    for (int64_t j = 0; j < w; ++j) mx[j] += static_cast<C>(std::log(s[j]));
    for (int64_t k = 0; k < R; ++k)
      for (int64_t j = 0; j < w; ++j) yb[k * B + j] = static_cast<T>(static_cast<C>(xb[k * B + j]) - mx[j]);
    return;
  }
  C inv[kTile];
  for (int64_t j = 0; j < w; ++j) inv[j] = static_cast<C>(1.0 / s[j]);
  for (int64_t k = 0; k < R; ++k)
    for (int64_t j = 0; j < w; ++j)
      yb[k * B + j] = static_cast<T>(fast_exp(static_cast<C>(xb[k * B + j]) - mx[j]) * inv[j]);
}

template <class T>
void softmax_backward_row(T* gx, const T* gy, const T* y, int64_t n, bool log) {
  using C = compute_t<T>;
  if constexpr (std::is_same_v<T, C>) {
    if (log) {
      const C s = static_cast<C>(sum_row<C>(gy, nullptr, n));
      for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] - fast_exp(y[i]) * s;
    } else {
      const C dot = static_cast<C>(sum_row<C>(gy, y, n));
      for (int64_t i = 0; i < n; ++i) gx[i] = y[i] * (gy[i] - dot);
    }
    return;
  }
  if (log) {
    const C s = static_cast<C>(lane_sum<C>(n, [&](int64_t i) { return static_cast<C>(gy[i]); }));
    for (int64_t i = 0; i < n; ++i) gx[i] = static_cast<T>(static_cast<C>(gy[i]) - fast_exp(static_cast<C>(y[i])) * s);
  } else {
    const C dot =
        static_cast<C>(lane_sum<C>(n, [&](int64_t i) { return static_cast<C>(gy[i]) * static_cast<C>(y[i]); }));
    for (int64_t i = 0; i < n; ++i) gx[i] = static_cast<T>(static_cast<C>(y[i]) * (static_cast<C>(gy[i]) - dot));
  }
}

template <class T>
void softmax_backward_cols(T* gx, const T* gy, const T* y, const ReduceGeom& g, int64_t item, bool log) {
  using C = compute_t<T>;
  const int64_t R = g.size, B = g.inner;
  const int64_t ntiles = ceil_div(B, kTile);
  const int64_t a = item / ntiles, b0 = (item % ntiles) * kTile, w = std::min(kTile, B - b0);
  const int64_t base = a * R * B + b0;
  double acc[kTile];
  for (int64_t j = 0; j < w; ++j) acc[j] = 0.0;
  for (int64_t k = 0; k < R; ++k)
    for (int64_t j = 0; j < w; ++j) {
      const int64_t i = base + k * B + j;
      acc[j] += log ? static_cast<double>(static_cast<C>(gy[i]))
                    : static_cast<double>(static_cast<C>(gy[i]) * static_cast<C>(y[i]));
    }
  for (int64_t k = 0; k < R; ++k)
    for (int64_t j = 0; j < w; ++j) {
      const int64_t i = base + k * B + j;
      const C s = static_cast<C>(acc[j]);
      gx[i] = log ? static_cast<T>(static_cast<C>(gy[i]) - fast_exp(static_cast<C>(y[i])) * s)
                  : static_cast<T>(static_cast<C>(y[i]) * (static_cast<C>(gy[i]) - s));
    }
}

/// Runs fn(item) over rows (inner == 1) or column tiles, in parallel with ~kGrain elements each.
template <class F>
void for_each_item(const ReduceGeom& g, int64_t passes, F&& fn) {
  const int64_t items = g.inner == 1 ? g.outer : g.outer * ceil_div(g.inner, kTile);
  const int64_t per_item = std::max<int64_t>(1, g.size * std::min(g.inner, kTile) * passes);
  parallel_for(items, std::max<int64_t>(1, kGrain / per_item), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) fn(i);
  });
}

/// Runs fn(row_begin, row_end) over the rows of an inner == 1 block, in parallel.
template <class F>
void for_each_rows(const ReduceGeom& g, int64_t passes, F&& fn) {
  const int64_t per_row = std::max<int64_t>(1, g.size * passes);
  parallel_for(g.outer, std::max<int64_t>(1, kGrain / per_row), fn);
}

}  // namespace

void softmax(const Tensor& out, const Tensor& in, const ReduceGeom& g, bool log) {
  if (g.outer * g.size * g.inner == 0) return;
  dispatch<kFloatingTypes>(in.dtype(), log ? "log_softmax" : "softmax", [&]<class T>() {
    T* y = static_cast<T*>(out.data_ptr());
    const T* x = static_cast<const T*>(in.data_ptr());
    if (g.inner == 1) {
      if constexpr (std::is_same_v<T, float>) {
        for_each_rows(g, 4, [&](int64_t r0, int64_t r1) {
          softmax_rows_f32(y + r0 * g.size, x + r0 * g.size, r1 - r0, g.size, log);
        });
        return;
      }
      for_each_item(g, 4, [&](int64_t r) { softmax_row(y + r * g.size, x + r * g.size, g.size, log); });
    } else {
      for_each_item(g, 4, [&](int64_t i) { softmax_cols(y, x, g, i, log); });
    }
  });
}

void softmax_backward(const Tensor& gx, const Tensor& gy, const Tensor& y, const ReduceGeom& g, bool log) {
  if (g.outer * g.size * g.inner == 0) return;
  dispatch<kFloatingTypes>(gx.dtype(), log ? "log_softmax_backward" : "softmax_backward", [&]<class T>() {
    T* dx = static_cast<T*>(gx.data_ptr());
    const T* dy = static_cast<const T*>(gy.data_ptr());
    const T* py = static_cast<const T*>(y.data_ptr());
    if (g.inner == 1) {
      if constexpr (std::is_same_v<T, float>) {
        for_each_rows(g, 3, [&](int64_t r0, int64_t r1) {
          const int64_t o = r0 * g.size;
          softmax_backward_rows_f32(dx + o, dy + o, py + o, r1 - r0, g.size, log);
        });
        return;
      }
      for_each_item(g, 3, [&](int64_t r) {
        const int64_t o = r * g.size;
        softmax_backward_row(dx + o, dy + o, py + o, g.size, log);
      });
    } else {
      for_each_item(g, 3, [&](int64_t i) { softmax_backward_cols(dx, dy, py, g, i, log); });
    }
  });
}

}  // namespace ember::cpu
