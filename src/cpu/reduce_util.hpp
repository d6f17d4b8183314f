// Private to the CPU backend: small helpers shared by the reduction and softmax kernels.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "ember/core/dtype.hpp"

namespace ember::cpu {

/// Columns accumulated together in a column reduction (256 doubles = 2 KiB of accumulators).
constexpr int64_t kTile = 256;
/// Elements per fixed chunk of a long reduction; partials are merged in chunk order.
constexpr int64_t kChunk = 1 << 16;

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <class C>
inline bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) return v != v;
  else return false;
}

template <class C>
constexpr C lowest_of() {
  if constexpr (std::is_floating_point_v<C>) return -std::numeric_limits<C>::infinity();
  else return std::numeric_limits<C>::lowest();
}

template <class C>
constexpr C highest_of() {
  if constexpr (std::is_floating_point_v<C>) return std::numeric_limits<C>::infinity();
  else return std::numeric_limits<C>::max();
}

/// Converts an accumulator (double, float, int64, bool) to an element type, rounding once.
template <class Out, class Acc>
inline Out to_out(Acc v) {
  if constexpr (std::is_same_v<Out, Acc>) return v;
  else if constexpr (std::is_same_v<Out, Half> || std::is_same_v<Out, BFloat16>) return Out(static_cast<float>(v));
  else if constexpr (std::is_same_v<Out, bool>) return v != Acc(0);
  else return static_cast<Out>(v);
}

}  // namespace ember::cpu
