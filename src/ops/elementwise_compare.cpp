// Comparisons, logical ops, where, equal and allclose.
#include <cmath>

#include "elementwise_common.hpp"

namespace ember {

using namespace elementwise_detail;
using cpu::BinaryOp;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

namespace {

/// A bool tensor of op(a, b) computed in the promoted dtype (no gradient).
Tensor compare(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_operand(a, name);
  check_operand(b, name);
  const DType dt = result_type(a, b);
  Tensor out = empty(broadcast_shapes(a.shape(), b.shape(), name), {.dtype = kBool, .device = result_device(a, b)});
  NoGradGuard ng;
  run_binary(op, out, cast(a, dt), cast(b, dt));
  return out;
}

Tensor compare(BinaryOp op, const char* name, const Tensor& a, const Scalar& b) {
  check_operand(a, name);
  Tensor bt;
  {
    NoGradGuard ng;
    bt = scalar_tensor(b, {.dtype = result_type(a, b)});
  }
  return compare(op, name, a, bt);
}

Tensor logical(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_operand(a, name);
  check_operand(b, name);
  Tensor out = empty(broadcast_shapes(a.shape(), b.shape(), name), {.dtype = kBool, .device = result_device(a, b)});
  NoGradGuard ng;
  run_binary(op, out, cast(a, kBool), cast(b, kBool));
  return out;
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare(BinaryOp::eq, "eq", a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(BinaryOp::ne, "ne", a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(BinaryOp::lt, "lt", a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(BinaryOp::le, "le", a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(BinaryOp::gt, "gt", a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(BinaryOp::ge, "ge", a, b); }
Tensor eq(const Tensor& a, const Scalar& b) { return compare(BinaryOp::eq, "eq", a, b); }
Tensor ne(const Tensor& a, const Scalar& b) { return compare(BinaryOp::ne, "ne", a, b); }
Tensor lt(const Tensor& a, const Scalar& b) { return compare(BinaryOp::lt, "lt", a, b); }
Tensor le(const Tensor& a, const Scalar& b) { return compare(BinaryOp::le, "le", a, b); }
Tensor gt(const Tensor& a, const Scalar& b) { return compare(BinaryOp::gt, "gt", a, b); }
Tensor ge(const Tensor& a, const Scalar& b) { return compare(BinaryOp::ge, "ge", a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return logical(BinaryOp::logical_and, "logical_and", a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return logical(BinaryOp::logical_or, "logical_or", a, b); }

// ------------------------------------------------------------------ where
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_operand(cond, "where");
  check_operand(a, "where");
  check_operand(b, "where");

  EMBER_CHECK(cond.dtype() == DType::boolean, DTypeError, "where: condition must be a bool tensor, got dtype ",
              dtype_name(cond.dtype()), "; compare first (e.g. ne(cond, 0))");
  const Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  const DType dt = result_type(a, b);
  const Device dev = cond.is_cuda() ? cond.device() : result_device(a, b);
  Tensor out = empty(shape, {.dtype = dt, .device = dev});
  {
    NoGradGuard ng;
    if (dev.is_cuda()) {
      cuda_backend::where(out, cond, cast(a, dt), cast(b, dt));
    } else {
      EMBER_CHECK(cond.is_cpu() && a.is_cpu() && b.is_cpu(), DeviceError, "where: expected all tensors on cpu");
      cpu::where(out, cond, cast(a, dt), cast(b, dt));
    }
  }
  if (!autograd::any_requires_grad({&a, &b})) return out;
  return autograd::record("WhereBackward0", {a, b}, out,
                          [c = autograd::SavedTensor(cond), sa = a.shape(), sb = b.shape(), da = a.dtype(),
                           db = b.dtype()](const Grads& g, const Needs& needs) {
                            Grads r(2);
                            const Tensor cv = c.get();
                            if (needs[0]) r[0] = reduce_grad(where(cv, g[0], 0.0), sa, da);
                            if (needs[1]) r[1] = reduce_grad(where(logical_not(cv), g[0], 0.0), sb, db);
                            return r;
                          });
}

Tensor where(const Tensor& cond, const Tensor& a, const Scalar& b) {
  check_operand(a, "where");
  Tensor bt;
  {
    NoGradGuard ng;
    bt = scalar_tensor(b, {.dtype = result_type(a, b)});
  }
  return where(cond, a, bt);
}

// ------------------------------------------------------------------ equal / allclose
bool equal(const Tensor& a, const Tensor& b) {
  check_operand(a, "equal");
  check_operand(b, "equal");
  check_cpu_only(a, "equal");
  check_cpu_only(b, "equal");
  if (a.shape() != b.shape()) return false;
  const std::vector<bool> e = eq(a, b).to_vector<bool>();
  for (bool v : e)
    if (!v) return false;
  return true;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  check_operand(a, "allclose");
  check_operand(b, "allclose");
  check_cpu_only(a, "allclose");
  check_cpu_only(b, "allclose");
  EMBER_CHECK(rtol >= 0 && atol >= 0, ValueError, "allclose: rtol and atol must be non-negative, got rtol=", rtol,
              " atol=", atol);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "allclose");
  // Not a hot path: compare in double on the host.
  NoGradGuard ng;
  const std::vector<double> va = a.expand(shape).to_vector<double>();
  const std::vector<double> vb = b.expand(shape).to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i) {
    const double x = va[i], y = vb[i];
    if (std::isnan(x) || std::isnan(y)) {
      if (equal_nan && std::isnan(x) && std::isnan(y)) continue;
      return false;
    }
    if (x == y) continue;  // includes equal infinities
    if (std::isinf(x) || std::isinf(y)) return false;
    if (!(std::fabs(x - y) <= atol + rtol * std::fabs(y))) return false;
  }
  return true;
}

}  // namespace ember
