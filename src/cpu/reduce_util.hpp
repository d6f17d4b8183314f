// Private to the CPU backend: small helpers shared by the reduction and softmax kernels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "ember/core/dtype.hpp"
#include "vec_math.hpp"

/// Forces inlining so that ISA clones (target_clones callers) compile these helpers with
/// their own instruction set instead of calling the baseline copy.
#define EMBER_REDUCE_INLINE inline __attribute__((always_inline))

namespace ember::cpu {

/// Columns accumulated together in a column reduction (256 doubles = 2 KiB of accumulators).
constexpr int64_t kTile = 256;
/// Elements per fixed chunk of a long reduction; partials are merged in chunk order.
constexpr int64_t kChunk = 1 << 16;

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <class C>
inline bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>)
    return v != v;
  else
    return false;
}

template <class C>
constexpr C lowest_of() {
  if constexpr (std::is_floating_point_v<C>)
    return -std::numeric_limits<C>::infinity();
  else
    return std::numeric_limits<C>::lowest();
}

template <class C>
constexpr C highest_of() {
  if constexpr (std::is_floating_point_v<C>)
    return std::numeric_limits<C>::infinity();
  else
    return std::numeric_limits<C>::max();
}

/// max(a, v) where a NaN in either wins and stays (torch.max semantics). Written with `|`
/// rather than `||` so both compares are unconditional and the select vectorises.
template <class C>
EMBER_REDUCE_INLINE C max_nan(C a, C v) {
  return ((v > a) | is_nan(v)) ? v : a;
}
template <class C>
EMBER_REDUCE_INLINE C min_nan(C a, C v) {
  return ((v < a) | is_nan(v)) ? v : a;
}

/// NaN-propagating max (kMax) or min of a contiguous f32/f64 row. GCC will not vectorise a
/// NaN-aware select reduction on its own (it may not reorder it), so this uses its vector
/// extension directly: 16-byte vectors (the baseline x86-64 width), four accumulators kept in
/// named registers rather than an array (an array gets spilled to the stack).
typedef float VecF32 __attribute__((vector_size(16)));
typedef double VecF64 __attribute__((vector_size(16)));

template <class V, bool kMax>
EMBER_REDUCE_INLINE V extreme_step(V a, V v) {
  return ((kMax ? (v > a) : (v < a)) | (v != v)) ? v : a;
}

template <class C, bool kMax>
EMBER_REDUCE_INLINE C extreme_row(const C* x, int64_t n) {
  static_assert(std::is_floating_point_v<C>);
  using V = std::conditional_t<std::is_same_v<C, float>, VecF32, VecF64>;
  constexpr int64_t kW = static_cast<int64_t>(sizeof(V) / sizeof(C));
  const C init = kMax ? lowest_of<C>() : highest_of<C>();
  V a0 = V{} + init, a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 4 * kW <= n; i += 4 * kW) {
    V v0, v1, v2, v3;
    std::memcpy(&v0, x + i, sizeof(V));
    std::memcpy(&v1, x + i + kW, sizeof(V));
    std::memcpy(&v2, x + i + 2 * kW, sizeof(V));
    std::memcpy(&v3, x + i + 3 * kW, sizeof(V));
    a0 = extreme_step<V, kMax>(a0, v0);
    a1 = extreme_step<V, kMax>(a1, v1);
    a2 = extreme_step<V, kMax>(a2, v2);
    a3 = extreme_step<V, kMax>(a3, v3);
  }
  a0 = extreme_step<V, kMax>(a0, a1);
  a2 = extreme_step<V, kMax>(a2, a3);
  a0 = extreme_step<V, kMax>(a0, a2);
  C m = init;
  for (int64_t j = 0; j < kW; ++j) m = kMax ? max_nan(m, a0[j]) : min_nan(m, a0[j]);
  for (; i < n; ++i) m = kMax ? max_nan(m, x[i]) : min_nan(m, x[i]);
  return m;
}

/// sum of a[i] (or a[i] * b[i] when b is given) over a contiguous row: float/double lanes
/// within blocks of 1024 (vectorised), blocks added in double.
template <class C>
EMBER_REDUCE_INLINE double sum_row(const C* a, const C* b, int64_t n) {
  constexpr int kLanes = 16;
  constexpr int64_t kBlock = 1024;
  double total = 0.0;
  for (int64_t s = 0; s < n; s += kBlock) {
    const int64_t e = std::min(n, s + kBlock);
    C lanes[kLanes] = {};
    int64_t i = s;
    if (b) {
      for (; i + kLanes <= e; i += kLanes)
        for (int j = 0; j < kLanes; ++j) lanes[j] += a[i + j] * b[i + j];
      for (; i < e; ++i) lanes[0] += a[i] * b[i];
    } else {
      for (; i + kLanes <= e; i += kLanes)
        for (int j = 0; j < kLanes; ++j) lanes[j] += a[i + j];
      for (; i < e; ++i) lanes[0] += a[i];
    }
    for (int w = kLanes / 2; w > 0; w /= 2)
      for (int j = 0; j < w; ++j) lanes[j] += lanes[j + w];
    total += static_cast<double>(lanes[0]);
  }
  return total;
}

/// e^x for x <= 0 that is not NaN (x - rowmax once the max is known finite): the reduction
/// x = n ln2 + r, |r| <= ln2/2, needs no overflow or NaN handling, so it is about half the
/// work of the general exp. e^r by its degree-7 Taylor polynomial (truncation < 6e-9
/// relative); results below the smallest normal (x < -87.33) flush to 0.
EMBER_REDUCE_INLINE float exp_nonpos(float x) {
  const float xc = x < -87.0f ? -87.0f : x;
  float n;
  const float p = vm::exp_reduced(xc, n);
  return x < -87.33f ? 0.0f : p * vm::bits_as_float((static_cast<int32_t>(n) + 127) << 23);
}

/// Converts an accumulator (double, float, int64, bool) to an element type, rounding once.
template <class Out, class Acc>
inline Out to_out(Acc v) {
  if constexpr (std::is_same_v<Out, Acc>)
    return v;
  else if constexpr (std::is_same_v<Out, Half> || std::is_same_v<Out, BFloat16>)
    return Out(static_cast<float>(v));
  else if constexpr (std::is_same_v<Out, bool>)
    return v != Acc(0);
  else
    return static_cast<Out>(v);
}

}  // namespace ember::cpu
