// CPU backend entry points (internal: called by src/ops only). Each writes into a
// preallocated output; inputs are already validated, broadcast-compatible and on the CPU.
#pragma once

#include "ember/core/tensor.hpp"

namespace ember::cpu {

/// dst[i] = convert(src[i]); src broadcasts to dst's shape; any strides, any dtypes.
EMBER_API void copy(const Tensor& dst, const Tensor& src);
/// dst[i] = value (converted to dst's dtype).
EMBER_API void fill(const Tensor& dst, const Scalar& value);

// ------------------------------------------------------------------ matrix products (src/cpu/gemm.cpp)
/// Batched matrix product c[i] = alpha * a[i] · b[i] + beta * c[i] over the leading (batch)
/// dims: a (*, m, k), b (*, k, n), c (*, m, n), the three with the same batch shape (a and b may
/// broadcast there through stride 0). Each matrix of a and b must be row-major or
/// column-major (gemm_layout_ok); a column-major one, e.g. a transposed view, goes to the GEMM
/// as a transpose flag without a copy. c must be row-major (unit last stride) and must not
/// overlap a or b. With beta == 0, c is not read (it may hold NaN). Floating dtypes and
/// i32/i64; f16/bf16 are computed in f32 and rounded once. Uses get_num_threads() threads.
EMBER_API void gemm(const Tensor& c, const Tensor& a, const Tensor& b, double alpha = 1.0, double beta = 0.0);
/// True when the last two dims of t form a matrix gemm() accepts as an a or b operand without a
/// copy (one of them has unit stride and the other a leading dimension large enough).
EMBER_API bool gemm_layout_ok(const Tensor& t);

}  // namespace ember::cpu

// ------------------------------------------------------------------ reductions (src/cpu/reduce.cpp)
namespace ember::cpu {

/// A reduction seen as a contiguous (outer, size, inner) block: the input is a contiguous
/// tensor of outer*size*inner elements, reduced over the middle axis into a contiguous
/// output of outer*inner elements. size == 0 is allowed (empty reduction).
struct ReduceGeom {
  int64_t outer = 1;
  int64_t size = 1;
  int64_t inner = 1;
};

enum class ReduceKind {
  kSum,      // out dtype: int64 for integral/bool inputs, else the input's
  kMean,     // floating only
  kProd,     // as kSum
  kMax,      // NaN propagates; same dtype; size > 0
  kMin,
  kNormP,    // (sum |x|^p)^(1/p), floating only; p = 0 counts non-zeros; p = 1, 2 fast paths
  kNormInf,  // max |x|
  kNormNegInf,  // min |x|
};

/// out[o, i] = reduce_k in[o, k, i]. `p` is the norm order for kNormP.
EMBER_API void reduce(const Tensor& out, const Tensor& in, const ReduceGeom& g, ReduceKind kind, double p = 2.0);
/// Max (is_max) or min along the middle axis with the first index of the extreme value
/// (NaN counts as the extreme). `values` may be undefined (argmax/argmin); indices are int64.
EMBER_API void reduce_arg(const Tensor& values, const Tensor& indices, const Tensor& in, const ReduceGeom& g,
                          bool is_max);
/// Variance along the middle axis, two-pass in double (f32 for none), divided by max(0, size - correction).
EMBER_API void var(const Tensor& out, const Tensor& in, const ReduceGeom& g, int64_t correction);
/// log(sum(exp(x))) along the middle axis, shifted by the max for stability.
EMBER_API void logsumexp(const Tensor& out, const Tensor& in, const ReduceGeom& g);
/// Inclusive prefix sum along the middle axis; out has in's geometry (int64 for integral inputs).
EMBER_API void cumsum(const Tensor& out, const Tensor& in, const ReduceGeom& g);

// ------------------------------------------------------------------ softmax (src/cpu/softmax.cpp)
/// Softmax (or log-softmax) along the middle axis; out has in's geometry and dtype.
EMBER_API void softmax(const Tensor& out, const Tensor& in, const ReduceGeom& g, bool log);
/// Gradient of softmax / log-softmax given the forward output y and its gradient gy:
/// softmax: gx = y * (gy - sum(gy * y)); log-softmax: gx = gy - exp(y) * sum(gy).
EMBER_API void softmax_backward(const Tensor& gx, const Tensor& gy, const Tensor& y, const ReduceGeom& g, bool log);

}  // namespace ember::cpu
