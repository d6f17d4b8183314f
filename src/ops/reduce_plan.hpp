// Private to src/ops: dim validation and the (outer, size, inner) layout of a reduction.
#pragma once

#include <vector>

#include "ember/backend/cpu.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/tensor.hpp"

namespace ember::detail {

/// Shapes of one reduction (what backward needs; holds no tensor).
struct ReduceMeta {
  Shape in_shape;
  Shape out_shape;   // reduced dims removed
  Shape keep_shape;  // reduced dims kept as 1
  Shape dims;        // reduced dims, sorted, non-negative
};

struct ReducePlan : ReduceMeta {
  Tensor input;  // contiguous (outer, size, inner) block (no autograd history)
  cpu::ReduceGeom geom;
  const ReduceMeta& meta() const { return *this; }
};

/// Wraps and validates `dims` (empty = all dims); a repeated dim is a ValueError.
inline std::vector<bool> reduced_mask(const Tensor& x, const Shape& dims, const char* op) {
  const int64_t nd = x.dim();
  std::vector<bool> mask(static_cast<size_t>(nd), dims.empty());
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(nd, 1)), false);
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, nd, op);
    EMBER_CHECK(!seen[w], ValueError, op, ": dim ", w, " appears multiple times in the list of dims ", shape_str(dims));
    seen[w] = true;
    if (nd > 0) mask[w] = true;
  }
  return mask;
}

/// Lays `x` out as a contiguous (outer, size, inner) block reduced over the middle axis.
/// No copy when x is contiguous and the reduced dims (ignoring size-1 dims) are adjacent;
/// otherwise the kept dims are permuted first and the reduced dims last, and copied.
inline ReducePlan plan_from_mask(const Tensor& x, const std::vector<bool>& mask) {
  NoGradGuard ng;
  ReducePlan p;
  const int64_t nd = x.dim();
  const Shape& s = x.shape();
  p.in_shape = s;
  for (int64_t d = 0; d < nd; ++d) {
    if (mask[d]) {
      p.dims.push_back(d);
      p.keep_shape.push_back(1);
    } else {
      p.out_shape.push_back(s[d]);
      p.keep_shape.push_back(s[d]);
    }
  }
  // First and last reduced dim of size != 1, and whether kept non-1 dims sit between them.
  int64_t first = -1, last = -1;
  bool gap = false;
  for (int64_t d = 0; d < nd; ++d) {
    if (s[d] == 1) continue;
    if (mask[d]) {
      if (first < 0) first = d;
      last = d;
    }
  }
  for (int64_t d = first + 1; first >= 0 && d < last; ++d) gap = gap || (!mask[d] && s[d] != 1);
  if (first < 0) {
    p.input = x.contiguous();
    p.geom = {x.numel(), 1, 1};
    return p;
  }
  if (!gap && x.is_contiguous()) {
    int64_t a = 1, r = 1, b = 1;
    for (int64_t d = 0; d < first; ++d) a *= s[d];
    for (int64_t d = first; d <= last; ++d) r *= s[d];
    for (int64_t d = last + 1; d < nd; ++d) b *= s[d];
    p.input = x;
    p.geom = {a, r, b};
    return p;
  }
  Shape perm;
  int64_t a = 1, r = 1;
  for (int64_t d = 0; d < nd; ++d)
    if (!mask[d]) {
      perm.push_back(d);
      a *= s[d];
    }
  for (int64_t d = 0; d < nd; ++d)
    if (mask[d]) {
      perm.push_back(d);
      r *= s[d];
    }
  p.input = x.permute(perm).contiguous();
  p.geom = {a, r, 1};
  return p;
}

inline ReducePlan plan_reduce(const Tensor& x, const Shape& dims, const char* op) {
  return plan_from_mask(x, reduced_mask(x, dims, op));
}

/// Plan for an op along one dim that keeps the shape (softmax, cumsum): (outer, size, inner).
inline cpu::ReduceGeom dim_geom(const Tensor& contiguous_x, int64_t dim) {
  cpu::ReduceGeom g;
  const Shape& s = contiguous_x.shape();
  if (s.empty()) return {1, 1, 1};
  g.outer = 1;
  g.inner = 1;
  for (int64_t d = 0; d < dim; ++d) g.outer *= s[d];
  g.size = s[dim];
  for (int64_t d = dim + 1; d < static_cast<int64_t>(s.size()); ++d) g.inner *= s[d];
  return g;
}

}  // namespace ember::detail
