// Row sorting and top-k. Rows are the last dim of contiguous tensors (the op layer moves the
// sorted dim last). Elements are sorted as (value, position) pairs with ties broken by
// position, which makes std::sort produce the stable order and makes top-k deterministic.
// NaN counts as larger than every number, as in PyTorch. NaNs are placed first (in position
// order) and only the numbers are sorted, with a plain comparator: comparing with NaN inside
// std::sort breaks its strict weak ordering (and may make it read out of bounds).
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "ember/backend/cpu.hpp"
#include "ember/core/dispatch.hpp"
#include "loops.hpp"

namespace ember::cpu {

namespace {

template <class C>
inline bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>)
    return std::isnan(v);
  else
    return false;
}

template <class C>
struct Entry {
  C v;
  int64_t i;
};

/// Ascending by value, ties by position (no NaNs in the range).
template <class C>
inline bool ascending(const Entry<C>& a, const Entry<C>& b) {
  return a.v < b.v || (a.v == b.v && a.i < b.i);
}

/// Descending by value, ties by position (no NaNs in the range).
template <class C>
inline bool descending(const Entry<C>& a, const Entry<C>& b) {
  return b.v < a.v || (a.v == b.v && a.i < b.i);
}

/// Loads a row into buf with its NaNs already in their final place, in position order: at the
/// end (ascending: NaN is the largest) or at the front (descending). Returns the range
/// [lo, hi) of the numbers, which is what remains to be sorted.
template <class T, class C>
std::pair<int64_t, int64_t> load_row(const T* row, int64_t n, bool nan_first, std::vector<Entry<C>>& buf) {
  int64_t nans = 0;
  if constexpr (std::is_floating_point_v<C>) {
    for (int64_t j = 0; j < n; ++j) nans += std::isnan(static_cast<C>(row[j])) ? 1 : 0;
  }
  if (nans == 0) {
    for (int64_t j = 0; j < n; ++j) buf[j] = {static_cast<C>(row[j]), j};
    return {0, n};
  }
  int64_t num = nan_first ? nans : 0, nan = nan_first ? 0 : n - nans;
  for (int64_t j = 0; j < n; ++j) {
    const C v = static_cast<C>(row[j]);
    if (is_nan(v))
      buf[nan++] = {v, j};
    else
      buf[num++] = {v, j};
  }
  return nan_first ? std::pair<int64_t, int64_t>{nans, n} : std::pair<int64_t, int64_t>{0, n - nans};
}

/// Rows per parallel chunk so each chunk holds about kGrain / 4 elements (sorting costs more
/// per element than a copy).
int64_t row_grain(int64_t row_len) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(row_len, 1) / 4); }

}  // namespace

void sort_rows(const Tensor& values, const Tensor& indices, bool descending_order) {
  const int64_t n = values.dim() == 0 ? 1 : values.size(-1);
  if (values.numel() == 0) return;
  const int64_t rows = values.numel() / n;
  dispatch(values.dtype(), "sort", [&]<class T>() {
    using C = compute_t<T>;
    T* v = static_cast<T*>(values.data_ptr());
    int64_t* ix = indices.data<int64_t>();
    parallel_for(rows, row_grain(n), [&](int64_t r0, int64_t r1) {
      std::vector<Entry<C>> buf(static_cast<size_t>(n));
      std::vector<T> tmp(static_cast<size_t>(n));
      for (int64_t r = r0; r < r1; ++r) {
        T* row = v + r * n;
        auto [lo, hi] = load_row(row, n, descending_order, buf);
        if (descending_order)
          std::sort(buf.begin() + lo, buf.begin() + hi, descending<C>);
        else
          std::sort(buf.begin() + lo, buf.begin() + hi, ascending<C>);
        int64_t* irow = ix + r * n;
        for (int64_t j = 0; j < n; ++j) irow[j] = buf[j].i;
        // Values come from the original row through the permutation (exact for 16-bit types).
        for (int64_t j = 0; j < n; ++j) tmp[j] = row[j];
        for (int64_t j = 0; j < n; ++j) row[j] = tmp[buf[j].i];
      }
    });
  });
}

void topk_rows(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t k, bool largest) {
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  if (x.numel() == 0 || k == 0) return;
  const int64_t rows = x.numel() / n;
  dispatch(x.dtype(), "topk", [&]<class T>() {
    using C = compute_t<T>;
    const T* xv = static_cast<const T*>(x.data_ptr());
    T* ov = static_cast<T*>(values.data_ptr());
    int64_t* oi = indices.data<int64_t>();
    parallel_for(rows, row_grain(n), [&](int64_t r0, int64_t r1) {
      std::vector<Entry<C>> buf(static_cast<size_t>(n));
      for (int64_t r = r0; r < r1; ++r) {
        const T* row = xv + r * n;
        // largest: NaNs lead (they count as the largest); smallest: they trail.
        auto [lo, hi] = load_row(row, n, largest, buf);
        const int64_t need = std::clamp<int64_t>(k - lo, 0, hi - lo);  // numbers among the first k
        if (need > 0) {
          auto first = buf.begin() + lo, mid = first + need, last = buf.begin() + hi;
          if (largest)
            std::partial_sort(first, mid, last, descending<C>);
          else
            std::partial_sort(first, mid, last, ascending<C>);
        }
        for (int64_t j = 0; j < k; ++j) {
          ov[r * k + j] = row[buf[j].i];
          oi[r * k + j] = buf[j].i;
        }
      }
    });
  });
}

}  // namespace ember::cpu
