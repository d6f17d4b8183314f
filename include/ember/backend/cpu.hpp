// CPU backend entry points (internal: called by src/ops only). Each writes into a
// preallocated output; inputs are already validated, broadcast-compatible and on the CPU.
#pragma once

#include <utility>

#include <cstdint>
#include <optional>

#include "ember/core/tensor.hpp"

namespace ember::cpu {

/// dst[i] = convert(src[i]); src broadcasts to dst's shape; any strides, any dtypes.
EMBER_API void copy(const Tensor& dst, const Tensor& src);
/// dst[i] = value (converted to dst's dtype).
EMBER_API void fill(const Tensor& dst, const Scalar& value);

// ------------------------------------------------------------------ elementwise (src/cpu/elementwise*.cpp)
/// Two-input elementwise ops. Arithmetic ops take out, a and b of one dtype; comparisons and
/// logical ops write bool `out` from a and b of one dtype. The *_backward ops are fused
/// gradient kernels: a is the incoming gradient, b the saved input or output named below.
enum class BinaryOp : uint8_t {
  add,  // a + alpha * b
  sub,  // a - alpha * b
  mul,
  div,
  maximum,  // NaN-propagating
  minimum,
  pow,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  logical_and,
  logical_or,
  threshold_backward,  // b > 0 ? a : 0 (b = relu output)
  tanh_backward,       // a * (1 - b^2) (b = tanh output)
  sigmoid_backward,    // a * b * (1 - b) (b = sigmoid output)
  gelu_backward,       // a * gelu'(b), erf form (b = input)
  gelu_tanh_backward,  // a * gelu'(b), tanh form (b = input)
  silu_backward,       // a * silu'(b) (b = input)
};
/// out = op(a, b), a and b broadcast to out's shape; alpha is used by add and sub.
EMBER_API void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, const Scalar& alpha = 1);

/// One-input elementwise ops; out and x have one dtype, except isfinite/isnan/isinf (bool out).
enum class UnaryOp : uint8_t {
  neg, abs, sign, exp, log, log1p, sqrt, rsqrt, square, reciprocal, sin, cos, erf, tanh, sigmoid, relu, gelu,
  gelu_tanh, silu, logical_not, isfinite, isnan, isinf,
};
/// out = op(x); x broadcasts to out's shape.
EMBER_API void unary(UnaryOp op, const Tensor& out, const Tensor& x);
/// out = min(max(x, lo), hi) (either bound may be absent); out and x have one dtype.
EMBER_API void clamp(const Tensor& out, const Tensor& x, const std::optional<Scalar>& lo,
                     const std::optional<Scalar>& hi);
/// out = cond ? a : b; cond is bool; out, a and b have one dtype; all broadcast to out.
EMBER_API void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);

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
/// Variance along the middle axis (two passes in double), divided by max(0, size - correction);
/// its square root (standard deviation) when take_sqrt.
EMBER_API void var(const Tensor& out, const Tensor& in, const ReduceGeom& g, int64_t correction, bool take_sqrt = false);
/// log(sum(exp(x))) along the middle axis, shifted by the max for stability.
EMBER_API void logsumexp(const Tensor& out, const Tensor& in, const ReduceGeom& g);
/// Inclusive prefix sum along the middle axis (suffix sum when reverse); out has in's
/// geometry (int64 for integral inputs).
EMBER_API void cumsum(const Tensor& out, const Tensor& in, const ReduceGeom& g, bool reverse = false);
/// gx[o, indices[o, i], i] = gy[o, i] for a zero-filled contiguous gx (the backward of max/min
/// along a dim); gy has gx's dtype, indices are int64.
EMBER_API void scatter_reduced(const Tensor& gx, const Tensor& gy, const Tensor& indices, const ReduceGeom& g);

// ------------------------------------------------------------------ softmax (src/cpu/softmax.cpp)
/// Softmax (or log-softmax) along the middle axis; out has in's geometry and dtype.
EMBER_API void softmax(const Tensor& out, const Tensor& in, const ReduceGeom& g, bool log);
/// Gradient of softmax / log-softmax given the forward output y and its gradient gy:
/// softmax: gx = y * (gy - sum(gy * y)); log-softmax: gx = gy - exp(y) * sum(gy).
EMBER_API void softmax_backward(const Tensor& gx, const Tensor& gy, const Tensor& y, const ReduceGeom& g, bool log);

}  // namespace ember::cpu

// ------------------------------------------------------------------ indexing (src/cpu/indexing.cpp)
namespace ember::cpu {

/// (min, max) of an int32/int64 index tensor of any strides; (0, -1) when it is empty.
EMBER_API std::pair<int64_t, int64_t> index_min_max(const Tensor& index);
/// out = x with x's `dim` replaced by `index` (1-d, values in range): out.size(dim) == index.numel().
EMBER_API void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);
/// out.select(dim, index[i]) += src.select(dim, i) for every i; duplicate indices accumulate.
EMBER_API void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
/// out[p] = x[p with p[dim] = index[p]] over index's shape (out has index's shape).
EMBER_API void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);
/// out[p with p[dim] = index[p]] += src[p] over index's shape (src may be larger than index).
EMBER_API void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
/// out[p] = value where mask[p] (bool, broadcast to out's shape); other elements unchanged.
EMBER_API void masked_fill(const Tensor& out, const Tensor& mask, const Scalar& value);
/// Zeroes, in place, the elements of the last two dims of `out` outside the upper (`upper`) or
/// lower triangle with the given diagonal offset (torch.triu / torch.tril).
EMBER_API void triangle_zero(const Tensor& out, int64_t diagonal, bool upper);
/// out[..., i, index[..., i]] = 1 for int indices already known to be in [0, num_classes);
/// out is a zeroed contiguous int64 tensor of shape index.shape + (num_classes,).
EMBER_API void one_hot(const Tensor& out, const Tensor& index);

// ------------------------------------------------------------------ sorting (src/cpu/sort.cpp)
/// Sorts each row (the last dim) of the contiguous `values` in place, stably, and writes the
/// original positions into the contiguous int64 `indices` of the same shape. NaN sorts as the
/// largest value.
EMBER_API void sort_rows(const Tensor& values, const Tensor& indices, bool descending);
/// The k largest (smallest) of each row (last dim) of contiguous `x`, in order, with their
/// positions; values and indices are contiguous (..., k). Ties keep the lower position first.
EMBER_API void topk_rows(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t k, bool largest);

}  // namespace ember::cpu
