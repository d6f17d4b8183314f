// Shapes and strides, broadcasting rules and dimension wrapping.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "ember/core/macros.hpp"

namespace ember {

using Shape = std::vector<int64_t>;

/// Product of the sizes (1 for a 0-d shape).
inline int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

/// Row-major strides for a shape.
EMBER_API Shape contiguous_strides(const Shape& shape);

/// "(2, 3, 4)" as PyTorch prints sizes; "()" for a scalar.
EMBER_API std::string shape_str(const Shape& s);

/// NumPy broadcast of two shapes; throws ShapeError naming `op` when they do not broadcast.
EMBER_API Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");

/// Wraps a possibly negative dim into [0, ndim); throws IndexError naming `op` otherwise.
/// For ndim == 0 the valid dims are -1 and 0 (as in PyTorch).
EMBER_API int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op = "dim");

}  // namespace ember
