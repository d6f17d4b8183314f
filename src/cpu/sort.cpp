// Row sorting and top-k. Rows are the last dim of contiguous tensors (the op layer moves the
// sorted dim last). Elements are sorted as (value, position) pairs with ties broken by
// position, which makes std::sort produce the stable order and makes top-k deterministic.
// NaN counts as larger than every number, as in PyTorch, so the order is a strict weak one
// even with NaNs (a plain `<` is not, and std::sort may then read out of bounds).
#include <algorithm>
#include <cmath>
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

/// a before b in ascending order: NaN last, ties by position.
template <class C>
inline bool ascending(const Entry<C>& a, const Entry<C>& b) {
  const bool an = is_nan(a.v), bn = is_nan(b.v);
  if (an || bn) return an == bn ? a.i < b.i : bn;
  if (a.v < b.v) return true;
  if (b.v < a.v) return false;
  return a.i < b.i;
}

/// a before b in descending order: NaN first, ties by position.
template <class C>
inline bool descending(const Entry<C>& a, const Entry<C>& b) {
  const bool an = is_nan(a.v), bn = is_nan(b.v);
  if (an || bn) return an == bn ? a.i < b.i : an;
  if (b.v < a.v) return true;
  if (a.v < b.v) return false;
  return a.i < b.i;
}

/// Rows per parallel chunk so each chunk holds about kGrain elements.
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
        for (int64_t j = 0; j < n; ++j) buf[j] = {static_cast<C>(row[j]), j};
        if (descending_order)
          std::sort(buf.begin(), buf.end(), descending<C>);
        else
          std::sort(buf.begin(), buf.end(), ascending<C>);
        int64_t* irow = ix + r * n;
        for (int64_t j = 0; j < n; ++j) {
          irow[j] = buf[j].i;
        }
        // Write values from the original row through the permutation (exact for 16-bit types).
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
        for (int64_t j = 0; j < n; ++j) buf[j] = {static_cast<C>(row[j]), j};
        auto mid = buf.begin() + k;
        if (largest)
          std::partial_sort(buf.begin(), mid, buf.end(), descending<C>);
        else
          std::partial_sort(buf.begin(), mid, buf.end(), ascending<C>);
        for (int64_t j = 0; j < k; ++j) {
          ov[r * k + j] = row[buf[j].i];
          oi[r * k + j] = buf[j].i;
        }
      }
    });
  });
}

}  // namespace ember::cpu
