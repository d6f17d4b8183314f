// Reductions: validation, output shapes and dtypes, autograd. The kernels (src/cpu/reduce.cpp)
// see every reduction as a contiguous (outer, size, inner) block; plan() below produces one,
// without a copy when the input is contiguous and the reduced dims are adjacent.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/ops/elementwise.hpp"
#include "ember/ops/reduction.hpp"
#include "reduce_plan.hpp"

namespace ember {

namespace {
using autograd::record;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;
using detail::plan_reduce;
using detail::ReducePlan;

/// The gradient of a reduced output, reshaped to keepdim form and broadcast over the input.
Tensor expand_grad(const Tensor& g, const detail::ReduceMeta& p) { return g.reshape(p.keep_shape).expand(p.in_shape); }

/// Runs one cpu::reduce kind and shapes the result.
Tensor run_reduce(const Tensor& x, const ReducePlan& p, cpu::ReduceKind kind, DType out_dtype, bool keepdim,
                  double norm_p = 2.0) {
  NoGradGuard ng;
  Tensor out = empty(p.out_shape, {.dtype = out_dtype, .device = x.device()});
  if (x.is_cuda()) cuda_backend::reduce(out, p.input, p.geom, kind, norm_p);
  else cpu::reduce(out, p.input, p.geom, kind, norm_p);
  return keepdim ? out.view(p.keep_shape) : out;
}

DType sum_dtype(DType t) { return is_floating(t) ? t : kInt64; }

/// max/min with indices on x's device.
void run_reduce_arg(const Tensor& values, const Tensor& indices, const Tensor& in, const cpu::ReduceGeom& g,
                    bool is_max) {
  if (in.is_cuda()) cuda_backend::reduce_arg(values, indices, in, g, is_max);
  else cpu::reduce_arg(values, indices, in, g, is_max);
}

/// Every reduction here runs on CPU and CUDA tensors.
void check_defined(const Tensor& x, const char* op) {
  EMBER_CHECK(x.defined(), ValueError, op, ": got an undefined tensor");
}

}  // namespace

// ------------------------------------------------------------------ sum / mean

Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
  check_defined(x, "sum");
  ReducePlan p = plan_reduce(x, dims, "sum");
  Tensor out = run_reduce(x, p, cpu::ReduceKind::kSum, sum_dtype(x.dtype()), keepdim);
  if (!is_floating(x.dtype())) return out;
  return record("SumBackward", {x}, out,
                [p = p.meta()](const Grads& g, const Needs&) { return Grads{expand_grad(g[0], p)}; });
}

Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  check_defined(x, "mean");
  EMBER_CHECK(is_floating(x.dtype()), DTypeError,
              "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. "
              "Got: ",
              dtype_name(x.dtype()), " (convert with .to(kFloat32) first)");
  ReducePlan p = plan_reduce(x, dims, "mean");
  Tensor out = run_reduce(x, p, cpu::ReduceKind::kMean, x.dtype(), keepdim);
  const double scale = 1.0 / static_cast<double>(p.geom.size);
  return record("MeanBackward", {x}, out,
                [p = p.meta(), scale](const Grads& g, const Needs&) { return Grads{expand_grad(g[0], p) * scale}; });
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor Tensor::sum() const { return ember::sum(*this); }
Tensor Tensor::sum(const Shape& dims, bool keepdim) const { return ember::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return ember::mean(*this); }
Tensor Tensor::mean(const Shape& dims, bool keepdim) const { return ember::mean(*this, dims, keepdim); }

// ------------------------------------------------------------------ prod

namespace {
/// d prod / d x_i = prod of the others: exact with zeros (one zero: only its slot is nonzero;
/// two or more: all zero), computed in double.
Tensor prod_backward(const Tensor& x, const Tensor& g) {
  std::vector<double> v = x.to_vector<double>();
  const double gv = g.item<double>();
  int64_t nzeros = 0, zero_at = -1;
  double others = 1.0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == 0.0) {
      ++nzeros;
      zero_at = static_cast<int64_t>(i);
    } else {
      others *= v[i];
    }
  }
  std::vector<double> r(v.size(), 0.0);
  if (nzeros == 0) {
    for (size_t i = 0; i < v.size(); ++i) r[i] = gv * others / v[i];
  } else if (nzeros == 1) {
    r[static_cast<size_t>(zero_at)] = gv * others;
  }
  return tensor(r, {static_cast<int64_t>(r.size())}).reshape(x.shape()).to(x.dtype()).to(x.device());
}
}  // namespace

Tensor prod(const Tensor& x) {
  check_defined(x, "prod");
  ReducePlan p = plan_reduce(x, {}, "prod");
  Tensor out = run_reduce(x, p, cpu::ReduceKind::kProd, sum_dtype(x.dtype()), false);
  if (!is_floating(x.dtype())) return out;
  return record("ProdBackward", {x}, out,
                [sx = SavedTensor(x)](const Grads& g, const Needs&) { return Grads{prod_backward(sx.get(), g[0])}; });
}

// ------------------------------------------------------------------ max / min / amax / amin

namespace {
/// amax/amin (and max()/min() of everything): the gradient is split evenly among ties.
Tensor extreme(const Tensor& x, const Shape& dims, bool keepdim, bool is_max, const char* op) {
  check_defined(x, op);
  ReducePlan p = plan_reduce(x, dims, op);
  EMBER_CHECK(p.geom.size > 0, IndexError, op, "(): cannot reduce over a dimension of size 0 (input shape ",
              shape_str(x.shape()), ", dims ", shape_str(dims), "): the ", is_max ? "maximum" : "minimum",
              " of nothing is undefined");
  Tensor out = run_reduce(x, p, is_max ? cpu::ReduceKind::kMax : cpu::ReduceKind::kMin, x.dtype(), keepdim);
  if (!is_floating(x.dtype())) return out;
  Tensor out_keep;
  {
    NoGradGuard ng;
    out_keep = out.view(p.keep_shape);
  }
  return record(is_max ? "AmaxBackward" : "AminBackward", {x}, out,
                [sx = SavedTensor(x), sy = SavedTensor(out_keep), p = p.meta()](const Grads& g, const Needs&) {
                  Tensor x = sx.get();
                  Tensor mask = eq(x, sy.get()).to(x.dtype());
                  Tensor count = mask.sum(p.dims, true);
                  return Grads{g[0].reshape(p.keep_shape) * mask / count};
                });
}

void check_nonempty(const Tensor& x, const char* op) {
  EMBER_CHECK(x.numel() > 0, ValueError, op, "(): expected a non-empty tensor, got shape ", shape_str(x.shape()),
              "; the result over zero elements is undefined (reduce over a non-empty dim instead)");
}

/// max/min along one dim with indices; ties pick the first index.
std::pair<Tensor, Tensor> extreme_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max, const char* op) {
  check_defined(x, op);
  ReducePlan p = plan_reduce(x, {dim}, op);
  const int64_t d = x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), op);
  EMBER_CHECK(p.geom.size > 0, IndexError, op, "(): expected reduction dim ", d, " to have non-zero size (input shape ",
              shape_str(x.shape()), ")");
  Tensor values, indices;
  {
    NoGradGuard ng;
    values = empty(p.out_shape, {.dtype = x.dtype(), .device = x.device()});
    indices = empty(p.out_shape, {.dtype = kInt64, .device = x.device()});
    run_reduce_arg(values, indices, p.input, p.geom, is_max);
    if (keepdim) {
      values = values.view(p.keep_shape);
      indices = indices.view(p.keep_shape);
    }
  }
  if (!is_floating(x.dtype())) return {values, indices};
  const cpu::ReduceGeom sg = x.dim() == 0 ? cpu::ReduceGeom{1, 1, 1} : detail::dim_geom(x, d);
  values = record(is_max ? "MaxBackward0" : "MinBackward0", {x}, values,
                  [si = SavedTensor(indices), sg, p = p.meta(), dt = x.dtype()](const Grads& g, const Needs&) {
                    const Tensor idx = si.get().contiguous();
                    Tensor gx = zeros(p.in_shape, {.dtype = dt, .device = idx.device()});
                    Tensor gy = g[0].to(dt).contiguous();
                    if (gx.is_cuda()) cuda_backend::scatter_reduced(gx, gy, idx, sg);
                    else cpu::scatter_reduced(gx, gy, idx, sg);
                    return Grads{gx};
                  });
  return {values, indices};
}

Tensor arg_extreme(const Tensor& x, std::optional<int64_t> dim, bool keepdim, bool is_max, const char* op) {
  check_defined(x, op);
  if (dim.has_value()) {
    ReducePlan p = plan_reduce(x, {*dim}, op);
    EMBER_CHECK(p.geom.size > 0, IndexError, op, "(): expected reduction dim ", wrap_dim(*dim, x.dim(), op),
                " to have non-zero size (input shape ", shape_str(x.shape()), ")");
    Tensor idx = empty(p.out_shape, {.dtype = kInt64, .device = x.device()});
    run_reduce_arg(Tensor(), idx, p.input, p.geom, is_max);
    return keepdim ? idx.view(p.keep_shape) : idx;
  }
  check_nonempty(x, op);
  NoGradGuard ng;
  Tensor flat = x.contiguous().reshape({x.numel()});
  Tensor idx = empty({}, {.dtype = kInt64, .device = x.device()});
  run_reduce_arg(Tensor(), idx, flat, {1, x.numel(), 1}, is_max);
  return keepdim ? idx.reshape(Shape(static_cast<size_t>(x.dim()), 1)) : idx;
}
}  // namespace

Tensor max(const Tensor& x) {
  check_nonempty(x, "max");
  return extreme(x, {}, false, true, "max");
}
Tensor min(const Tensor& x) {
  check_nonempty(x, "min");
  return extreme(x, {}, false, false, "min");
}
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) { return extreme(x, dims, keepdim, true, "amax"); }
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) { return extreme(x, dims, keepdim, false, "amin"); }
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_dim(x, dim, keepdim, true, "max");
}
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_dim(x, dim, keepdim, false, "min");
}
Tensor argmax(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  return arg_extreme(x, dim, keepdim, true, "argmax");
}
Tensor argmin(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  return arg_extreme(x, dim, keepdim, false, "argmin");
}

Tensor Tensor::max() const { return ember::max(*this); }
Tensor Tensor::min() const { return ember::min(*this); }
Tensor Tensor::argmax(std::optional<int64_t> dim, bool keepdim) const { return ember::argmax(*this, dim, keepdim); }

// ------------------------------------------------------------------ var / std

namespace {
void check_floating(const Tensor& x, const char* op) {
  EMBER_CHECK(is_floating(x.dtype()), DTypeError, op, "(): only floating-point dtypes are supported, got ",
              dtype_name(x.dtype()), " (convert with .to(kFloat32) first)");
}

Tensor var_std(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim, bool take_sqrt, const char* op) {
  check_defined(x, op);
  check_floating(x, op);
  ReducePlan p = plan_reduce(x, dims, op);
  Tensor out, out_keep;
  {
    NoGradGuard ng;
    out = empty(p.out_shape, {.dtype = x.dtype(), .device = x.device()});
    if (x.is_cuda()) cuda_backend::var(out, p.input, p.geom, correction, take_sqrt);
    else cpu::var(out, p.input, p.geom, correction, take_sqrt);
    out_keep = out.view(p.keep_shape);
    if (keepdim) out = out_keep;
  }
  const double denom = static_cast<double>(std::max<int64_t>(0, p.geom.size - correction));
  return record(
      take_sqrt ? "StdBackward" : "VarBackward", {x}, out,
      [sx = SavedTensor(x), sy = SavedTensor(out_keep), p = p.meta(), denom, take_sqrt](const Grads& g, const Needs&) {
        Tensor x = sx.get();
        Tensor centered = x - mean(x, p.dims, true);
        Tensor gk = g[0].reshape(p.keep_shape);
        if (!take_sqrt) return Grads{centered * (gk * (2.0 / denom))};
        // d std = (x - mean) / (denom * std); a zero std gives a zero gradient.
        Tensor s = sy.get();
        Tensor scale = where(ne(s, 0), gk / (s * denom), 0);
        return Grads{centered * scale};
      });
}
}  // namespace

Tensor var(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  return var_std(x, dims, correction, keepdim, false, "var");
}
Tensor std(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  return var_std(x, dims, correction, keepdim, true, "std");
}

// ------------------------------------------------------------------ norm

Tensor norm(const Tensor& x, double p_ord, const Shape& dims, bool keepdim) {
  check_defined(x, "norm");
  check_floating(x, "norm");
  EMBER_CHECK(!std::isnan(p_ord), ValueError, "norm(): the order p must not be NaN");
  ReducePlan p = plan_reduce(x, dims, "norm");
  const bool pos_inf = std::isinf(p_ord) && p_ord > 0, neg_inf = std::isinf(p_ord) && p_ord < 0;
  if (neg_inf || p_ord < 0)
    EMBER_CHECK(p.geom.size > 0, IndexError, "norm(): p = ", p_ord,
                " of a reduction over zero elements is undefined (input shape ", shape_str(x.shape()), ")");
  const cpu::ReduceKind kind = pos_inf   ? cpu::ReduceKind::kNormInf
                               : neg_inf ? cpu::ReduceKind::kNormNegInf
                                         : cpu::ReduceKind::kNormP;
  Tensor out = run_reduce(x, p, kind, x.dtype(), keepdim, p_ord);
  Tensor out_keep;
  {
    NoGradGuard ng;
    out_keep = out.view(p.keep_shape);
  }
  return record("NormBackward", {x}, out,
                [sx = SavedTensor(x), sy = SavedTensor(out_keep), m = p.meta(), p_ord, pos_inf, neg_inf](const Grads& g,
                                                                                                         const Needs&) {
                  Tensor x = sx.get();
                  Tensor n = sy.get();
                  Tensor gk = g[0].reshape(m.keep_shape);
                  if (p_ord == 0.0) return Grads{zeros_like(x)};
                  if (p_ord == 1.0) return Grads{sign(x) * gk};
                  if (p_ord == 2.0) return Grads{x * where(ne(n, 0), gk / n, 0)};
                  if (pos_inf || neg_inf) {
                    // Like amax/amin of |x|: split evenly among the elements that attain it.
                    Tensor mask = eq(abs(x), n).to(x.dtype());
                    return Grads{sign(x) * mask * (gk / mask.sum(m.dims, true))};
                  }
                  // d ||x||_p / dx = sign(x) |x|^(p-1) / ||x||^(p-1).
                  Tensor t = sign(x) * pow(abs(x), p_ord - 1.0);
                  if (p_ord < 1.0) t = where(ne(x, 0), t, 0);
                  return Grads{t * where(ne(n, 0), gk / pow(n, p_ord - 1.0), 0)};
                });
}

// ------------------------------------------------------------------ logsumexp

Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim) {
  check_defined(x, "logsumexp");
  check_floating(x, "logsumexp");
  ReducePlan p = plan_reduce(x, dims, "logsumexp");
  Tensor out, out_keep;
  {
    NoGradGuard ng;
    out = empty(p.out_shape, {.dtype = x.dtype(), .device = x.device()});
    if (x.is_cuda())
      cuda_backend::logsumexp(out, p.input, p.geom);
    else
      cpu::logsumexp(out, p.input, p.geom);
    out_keep = out.view(p.keep_shape);
    if (keepdim) out = out_keep;
  }
  return record("LogsumexpBackward", {x}, out,
                [sx = SavedTensor(x), sy = SavedTensor(out_keep), m = p.meta()](const Grads& g, const Needs&) {
                  return Grads{g[0].reshape(m.keep_shape) * exp(sx.get() - sy.get())};
                });
}

// ------------------------------------------------------------------ cumsum

namespace {
/// Prefix (suffix when reverse) sums of a contiguous block on its device.
void run_cumsum(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g, bool reverse) {
  if (in.is_cuda())
    cuda_backend::cumsum(out, in, g, reverse);
  else
    cpu::cumsum(out, in, g, reverse);
}
}  // namespace

Tensor cumsum(const Tensor& x, int64_t dim) {
  check_defined(x, "cumsum");
  const int64_t d = wrap_dim(dim, x.dim(), "cumsum");
  Tensor out;
  cpu::ReduceGeom geom;
  {
    NoGradGuard ng;
    Tensor xc = x.contiguous();
    geom = x.dim() == 0 ? cpu::ReduceGeom{1, 1, 1} : detail::dim_geom(xc, d);
    out = empty(x.shape(), {.dtype = sum_dtype(x.dtype()), .device = x.device()});
    run_cumsum(out, xc, geom, /*reverse=*/false);
  }
  if (!is_floating(x.dtype())) return out;
  return record("CumsumBackward", {x}, out, [geom](const Grads& g, const Needs&) {
    // The gradient of a prefix sum is the suffix sum of the gradient.
    Tensor gc = g[0].contiguous();
    Tensor gx = empty(gc.shape(), {.dtype = gc.dtype(), .device = gc.device()});
    run_cumsum(gx, gc, geom, /*reverse=*/true);
    return Grads{gx};
  });
}

}  // namespace ember
