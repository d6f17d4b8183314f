// Private to the CPU backend: the strided N-operand loop every elementwise kernel is built on.
//
// Operand 0 is the output; every operand has strides (in bytes) over the output's shape, with
// stride 0 along broadcast dimensions. Dimensions are coalesced where memory allows, then the
// innermost dimension is handed to `inner(ptrs, strides, n)` (n elements; strides in bytes).
// When every operand is contiguous the whole range is one inner call, which the compiler
// vectorises. Outer iterations are split across the thread pool for large tensors.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "ember/core/parallel.hpp"
#include "ember/core/tensor.hpp"

namespace ember::cpu {

/// Elements per thread below which a loop runs on one thread (memory-bound work: ~32 KiB).
constexpr int64_t kGrain = 32768;

template <size_t N>
struct StridedGeometry {
  Shape sizes;                                // coalesced, innermost last
  std::vector<std::array<int64_t, N>> strides;  // bytes, per dim per operand
};

/// Byte strides of `t` broadcast to `shape` (t.dim() <= shape.size(), NumPy rules).
inline Shape broadcast_byte_strides(const Tensor& t, const Shape& shape) {
  Shape out(shape.size(), 0);
  const int64_t lead = static_cast<int64_t>(shape.size()) - t.dim();
  const int64_t es = static_cast<int64_t>(t.element_size());
  for (int64_t i = 0; i < t.dim(); ++i) {
    out[i + lead] = t.size(i) == 1 && shape[i + lead] != 1 ? 0 : t.stride(i) * es;
  }
  return out;
}

template <size_t N>
StridedGeometry<N> make_geometry(const Shape& shape, const std::array<Shape, N>& byte_strides) {
  StridedGeometry<N> g;
  // Drop size-1 dims, then merge dim i into i+1 when every operand is contiguous across them.
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    std::array<int64_t, N> st;
    for (size_t k = 0; k < N; ++k) st[k] = byte_strides[k][d];
    if (!g.sizes.empty()) {
      bool merge = true;
      for (size_t k = 0; k < N; ++k) merge = merge && g.strides.back()[k] == st[k] * shape[d];
      if (merge) {
        g.sizes.back() *= shape[d];
        g.strides.back() = st;
        continue;
      }
    }
    g.sizes.push_back(shape[d]);
    g.strides.push_back(st);
  }
  if (g.sizes.empty()) {
    g.sizes.push_back(1);
    g.strides.push_back({});
  }
  return g;
}

/// Runs `inner(std::array<char*, N> ptrs, const std::array<int64_t, N>& strides, int64_t n)`
/// over every element of `shape`.
template <size_t N, class Inner>
void strided_loop(const Shape& shape, const std::array<char*, N>& base, const std::array<Shape, N>& byte_strides,
                  Inner&& inner, int64_t grain = kGrain) {
  const int64_t total = numel_of(shape);
  if (total == 0) return;
  StridedGeometry<N> g = make_geometry<N>(shape, byte_strides);
  const int64_t nd = static_cast<int64_t>(g.sizes.size());
  const int64_t inner_n = g.sizes[nd - 1];
  const std::array<int64_t, N> inner_st = g.strides[nd - 1];
  const int64_t outer = total / inner_n;

  auto run_range = [&](int64_t begin, int64_t end) {
    // Elements [begin, end) of the flattened iteration space, split into inner rows.
    Shape idx(nd, 0);
    int64_t row = begin / inner_n, col = begin % inner_n;
    int64_t r = row;
    for (int64_t d = nd - 2; d >= 0; --d) {
      idx[d] = r % g.sizes[d];
      r /= g.sizes[d];
    }
    int64_t pos = begin;
    while (pos < end) {
      std::array<char*, N> p = base;
      for (int64_t d = 0; d < nd - 1; ++d)
        for (size_t k = 0; k < N; ++k) p[k] += idx[d] * g.strides[d][k];
      for (size_t k = 0; k < N; ++k) p[k] += col * inner_st[k];
      int64_t n = std::min(inner_n - col, end - pos);
      inner(p, inner_st, n);
      pos += n;
      col = 0;
      for (int64_t d = nd - 2; d >= 0; --d) {
        if (++idx[d] < g.sizes[d]) break;
        idx[d] = 0;
      }
    }
  };
  (void)outer;
  parallel_for(total, grain, run_range);
}

/// Convenience: operand pointers and broadcast byte strides for out + inputs.
template <size_t N>
void operands(const std::array<const Tensor*, N>& ts, const Shape& shape, std::array<char*, N>& base,
              std::array<Shape, N>& strides) {
  for (size_t k = 0; k < N; ++k) {
    base[k] = static_cast<char*>(ts[k]->data_ptr());
    strides[k] = broadcast_byte_strides(*ts[k], shape);
  }
}

}  // namespace ember::cpu
