// Softmax / log-softmax along the middle axis of a contiguous (outer, size, inner) block, and
// their fused backward kernels.
//
// Rows (inner == 1) are the hot case (attention scores, logits): three passes over one row
// while it sits in L1/L2 — max, sum of exp(x - max), write — parallel over rows. Subtracting
// the max keeps exp from overflowing; sums accumulate in double so long rows (vocabularies)
// stay accurate. Other layouts go through a column tile so loads stay contiguous.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "ember/backend/cpu.hpp"
#include "ember/core/dispatch.hpp"
#include "loops.hpp"
#include "reduce_util.hpp"

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
      lanes[j] = (v > lanes[j] || v != v) ? v : lanes[j];
    }
  C m = lowest_of<C>();
  for (; i < n; ++i) {
    const C v = static_cast<C>(x[i]);
    m = (v > m || v != v) ? v : m;
  }
  for (int j = 0; j < kLanes; ++j) m = (lanes[j] > m || lanes[j] != lanes[j]) ? lanes[j] : m;
  return m;
}

template <class T>
void softmax_row(T* y, const T* x, int64_t n, bool log) {
  using C = compute_t<T>;
  const C m = row_max(x, n);
  double sum = 0.0;
  if (log) {
    for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<C>(x[i]) - m);
    const C shift = m + static_cast<C>(std::log(sum));
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(static_cast<C>(x[i]) - shift);
    return;
  }
  if constexpr (std::is_same_v<T, C>) {
    // Full-precision storage: keep exp(x - m) in y, then scale in place.
    for (int64_t i = 0; i < n; ++i) {
      const C e = std::exp(x[i] - m);
      y[i] = e;
      sum += e;
    }
    const C inv = static_cast<C>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  } else {
    // 16-bit storage: recompute exp rather than round it twice.
    for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<C>(x[i]) - m);
    const C inv = static_cast<C>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(std::exp(static_cast<C>(x[i]) - m) * inv);
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
      mx[j] = (v > mx[j] || v != v) ? v : mx[j];
    }
  for (int64_t k = 0; k < R; ++k)
    for (int64_t j = 0; j < w; ++j) s[j] += std::exp(static_cast<C>(xb[k * B + j]) - mx[j]);
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
      yb[k * B + j] = static_cast<T>(std::exp(static_cast<C>(xb[k * B + j]) - mx[j]) * inv[j]);
}

template <class T>
void softmax_backward_row(T* gx, const T* gy, const T* y, int64_t n, bool log) {
  using C = compute_t<T>;
  double acc = 0.0;
  if (log) {
    for (int64_t i = 0; i < n; ++i) acc += static_cast<C>(gy[i]);
    const C s = static_cast<C>(acc);
    for (int64_t i = 0; i < n; ++i)
      gx[i] = static_cast<T>(static_cast<C>(gy[i]) - std::exp(static_cast<C>(y[i])) * s);
  } else {
    for (int64_t i = 0; i < n; ++i) acc += static_cast<C>(gy[i]) * static_cast<C>(y[i]);
    const C dot = static_cast<C>(acc);
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
      gx[i] = log ? static_cast<T>(static_cast<C>(gy[i]) - std::exp(static_cast<C>(y[i])) * s)
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

}  // namespace

void softmax(const Tensor& out, const Tensor& in, const ReduceGeom& g, bool log) {
  if (g.outer * g.size * g.inner == 0) return;
  dispatch<kFloatingTypes>(in.dtype(), log ? "log_softmax" : "softmax", [&]<class T>() {
    T* y = static_cast<T*>(out.data_ptr());
    const T* x = static_cast<const T*>(in.data_ptr());
    if (g.inner == 1) {
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
