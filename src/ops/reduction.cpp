// Reductions: validation, output shapes and dtypes, autograd. The kernels (src/cpu/reduce.cpp)
// see every reduction as a contiguous (outer, size, inner) block; plan() below produces one,
// without a copy when the input is contiguous and the reduced dims are adjacent.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/ops/elementwise.hpp"
#include "ember/ops/reduction.hpp"
#include "reduce_plan.hpp"

namespace ember {

namespace {
using autograd::record;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;
using detail::check_cpu;
using detail::plan_reduce;
using detail::ReducePlan;

/// The gradient of a reduced output, reshaped to keepdim form and broadcast over the input.
Tensor expand_grad(const Tensor& g, const detail::ReduceMeta& p) { return g.reshape(p.keep_shape).expand(p.in_shape); }

/// Runs one cpu::reduce kind and shapes the result.
Tensor run_reduce(const Tensor& x, const ReducePlan& p, cpu::ReduceKind kind, DType out_dtype, bool keepdim,
                  double norm_p = 2.0) {
  NoGradGuard ng;
  Tensor out = empty(p.out_shape, {.dtype = out_dtype});
  cpu::reduce(out, p.input, p.geom, kind, norm_p);
  return keepdim ? out.view(p.keep_shape) : out;
}

DType sum_dtype(DType t) { return is_floating(t) ? t : kInt64; }

}  // namespace

// ------------------------------------------------------------------ sum / mean

Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
  check_cpu(x, "sum");
  ReducePlan p = plan_reduce(x, dims, "sum");
  Tensor out = run_reduce(x, p, cpu::ReduceKind::kSum, sum_dtype(x.dtype()), keepdim);
  if (!is_floating(x.dtype())) return out;
  return record("SumBackward", {x}, out, [p = p.meta()](const Grads& g, const Needs&) {
    return Grads{expand_grad(g[0], p)};
  });
}

Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  check_cpu(x, "mean");
  EMBER_CHECK(is_floating(x.dtype()), DTypeError,
              "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. "
              "Got: ",
              dtype_name(x.dtype()), " (convert with .to(kFloat32) first)");
  ReducePlan p = plan_reduce(x, dims, "mean");
  Tensor out = run_reduce(x, p, cpu::ReduceKind::kMean, x.dtype(), keepdim);
  const double scale = 1.0 / static_cast<double>(p.geom.size);
  return record("MeanBackward", {x}, out, [p = p.meta(), scale](const Grads& g, const Needs&) {
    return Grads{expand_grad(g[0], p) * scale};
  });
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor Tensor::sum() const { return ember::sum(*this); }
Tensor Tensor::sum(const Shape& dims, bool keepdim) const { return ember::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return ember::mean(*this); }
Tensor Tensor::mean(const Shape& dims, bool keepdim) const { return ember::mean(*this, dims, keepdim); }

}  // namespace ember
