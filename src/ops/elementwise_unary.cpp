// Unary elementwise ops (math, activations, clamp, in-place relu_/clamp_) with autograd.
#include <cmath>
#include <optional>
#include <string>

#include "elementwise_common.hpp"

namespace ember {

using namespace elementwise_detail;
using cpu::BinaryOp;
using cpu::UnaryOp;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

namespace {

/// op(x) as a fresh contiguous tensor of dtype `dt` (x is converted to dt first).
Tensor unary_core(UnaryOp op, const Tensor& x, DType dt) {
  Tensor out = empty(x.shape(), {.dtype = dt, .device = x.device()});
  NoGradGuard ng;
  run_unary(op, out, cast(x, dt));
  return out;
}

/// A fused gradient kernel: op(g, v) (see cpu::BinaryOp's *_backward entries).
Tensor fused_backward(BinaryOp op, const Tensor& g, const Tensor& v) {
  Tensor gv = cast(g, v.dtype());
  Tensor out = empty(broadcast_shapes(gv.shape(), v.shape(), "backward"), {.dtype = v.dtype(), .device = v.device()});
  run_binary(op, out, gv, v);
  return out;
}

/// Unary ops whose result is floating (integers and bool give the default float dtype).
Tensor float_unary(UnaryOp op, const char* name, const Tensor& x) {
  check_operand(x, name);
  return unary_core(op, x, float_result(x.dtype()));
}

void reject_bool(const Tensor& x, const char* name) {
  EMBER_CHECK(x.dtype() != DType::boolean, DTypeError, name, ": bool tensors are not supported",
              std::string(name) == "neg" ? "; use logical_not to invert a bool tensor" : "");
}

void require_float(const Tensor& x, const char* name) {
  EMBER_CHECK(is_floating(x.dtype()), DTypeError, name, ": expected a floating-point tensor, got dtype ",
              dtype_name(x.dtype()));
}

/// Records a one-input node whose gradient is fn(g, saved) with `saved` = x or out.
template <class F>
Tensor record_unary(const char* name, const Tensor& x, const Tensor& out, const Tensor& saved, F fn) {
  if (!autograd::any_requires_grad({&x})) return out;
  return autograd::record(name, {x}, out,
                          [s = autograd::SavedTensor(saved), fn, dx = x.dtype()](const Grads& g, const Needs&) {
                            Tensor r = fn(g[0], s.get());
                            return Grads{r.dtype() == dx ? r : r.to(dx)};
                          });
}

}  // namespace

// ------------------------------------------------------------------ arithmetic unary
Tensor neg(const Tensor& x) {
  check_operand(x, "neg");
  reject_bool(x, "neg");
  Tensor out = unary_core(UnaryOp::neg, x, x.dtype());
  if (!autograd::any_requires_grad({&x})) return out;
  return autograd::record("NegBackward0", {x}, out, [](const Grads& g, const Needs&) { return Grads{neg(g[0])}; });
}

Tensor abs(const Tensor& x) {
  check_operand(x, "abs");
  reject_bool(x, "abs");
  Tensor out = unary_core(UnaryOp::abs, x, x.dtype());
  return record_unary("AbsBackward0", x, out, x, [](const Tensor& g, const Tensor& v) { return g * sign(v); });
}

Tensor sign(const Tensor& x) {
  check_operand(x, "sign");
  Tensor out = unary_core(UnaryOp::sign, x, x.dtype());
  if (!autograd::any_requires_grad({&x})) return out;
  return autograd::record("SignBackward0", {x}, out,
                          [](const Grads& g, const Needs&) { return Grads{zeros_like(g[0])}; });
}

Tensor square(const Tensor& x) {
  check_operand(x, "square");
  reject_bool(x, "square");
  Tensor out = unary_core(UnaryOp::square, x, x.dtype());
  return record_unary("PowBackward0", x, out, x, [](const Tensor& g, const Tensor& v) { return g * v * 2.0; });
}

Tensor reciprocal(const Tensor& x) {
  Tensor out = float_unary(UnaryOp::reciprocal, "reciprocal", x);
  return record_unary("ReciprocalBackward0", x, out, out,
                      [](const Tensor& g, const Tensor& o) { return g * (o * o) * -1.0; });
}

// ------------------------------------------------------------------ transcendental
Tensor exp(const Tensor& x) {
  Tensor out = float_unary(UnaryOp::exp, "exp", x);
  return record_unary("ExpBackward0", x, out, out, [](const Tensor& g, const Tensor& o) { return g * o; });
}

Tensor log(const Tensor& x) {
  Tensor out = float_unary(UnaryOp::log, "log", x);
  return record_unary("LogBackward0", x, out, x, [](const Tensor& g, const Tensor& v) { return g / v; });
}

Tensor log1p(const Tensor& x) {
  Tensor out = float_unary(UnaryOp::log1p, "log1p", x);
  return record_unary("Log1PBackward0", x, out, x, [](const Tensor& g, const Tensor& v) { return g / (v + 1.0); });
}

Tensor sqrt(const Tensor& x) {
  Tensor out = float_unary(UnaryOp::sqrt, "sqrt", x);
  return record_unary("SqrtBackward0", x, out, out, [](const Tensor& g, const Tensor& o) { return g / (o * 2.0); });
}

Tensor rsqrt(const Tensor& x) {
  Tensor out = float_unary(UnaryOp::rsqrt, "rsqrt", x);
  return record_unary("RsqrtBackward0", x, out, out,
                      [](const Tensor& g, const Tensor& o) { return g * (o * o * o) * -0.5; });
}

Tensor sin(const Tensor& x) {
  Tensor out = float_unary(UnaryOp::sin, "sin", x);
  return record_unary("SinBackward0", x, out, x, [](const Tensor& g, const Tensor& v) { return g * cos(v); });
}

Tensor cos(const Tensor& x) {
  Tensor out = float_unary(UnaryOp::cos, "cos", x);
  return record_unary("CosBackward0", x, out, x, [](const Tensor& g, const Tensor& v) { return g * sin(v) * -1.0; });
}

Tensor erf(const Tensor& x) {
  Tensor out = float_unary(UnaryOp::erf, "erf", x);
  // d erf / dx = 2 / sqrt(pi) e^{-x^2}.
  return record_unary("ErfBackward0", x, out, x,
                      [](const Tensor& g, const Tensor& v) { return g * exp(square(v) * -1.0) * 1.1283791670955126; });
}

// ------------------------------------------------------------------ activations
Tensor tanh(const Tensor& x) {
  Tensor out = float_unary(UnaryOp::tanh, "tanh", x);
  return record_unary("TanhBackward0", x, out, out,
                      [](const Tensor& g, const Tensor& o) { return fused_backward(BinaryOp::tanh_backward, g, o); });
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = float_unary(UnaryOp::sigmoid, "sigmoid", x);
  return record_unary("SigmoidBackward0", x, out, out, [](const Tensor& g, const Tensor& o) {
    return fused_backward(BinaryOp::sigmoid_backward, g, o);
  });
}

Tensor relu(const Tensor& x) {
  check_operand(x, "relu");
  reject_bool(x, "relu");
  Tensor out = unary_core(UnaryOp::relu, x, x.dtype());
  return record_unary("ReluBackward0", x, out, out, [](const Tensor& g, const Tensor& o) {
    return fused_backward(BinaryOp::threshold_backward, g, o);
  });
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  check_operand(x, "gelu");
  EMBER_CHECK(approximate == "none" || approximate == "tanh", ValueError,
              "gelu: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
  require_float(x, "gelu");
  const bool tanh_form = approximate == "tanh";
  Tensor out = unary_core(tanh_form ? UnaryOp::gelu_tanh : UnaryOp::gelu, x, x.dtype());
  return record_unary("GeluBackward0", x, out, x, [tanh_form](const Tensor& g, const Tensor& v) {
    return fused_backward(tanh_form ? BinaryOp::gelu_tanh_backward : BinaryOp::gelu_backward, g, v);
  });
}

Tensor silu(const Tensor& x) {
  check_operand(x, "silu");
  require_float(x, "silu");
  Tensor out = unary_core(UnaryOp::silu, x, x.dtype());
  return record_unary("SiluBackward0", x, out, x,
                      [](const Tensor& g, const Tensor& v) { return fused_backward(BinaryOp::silu_backward, g, v); });
}

// ------------------------------------------------------------------ clamp
namespace {

/// clamp's result dtype: a float bound makes an integer tensor's result float (as torch).
DType clamp_dtype(const Tensor& x, const std::optional<Scalar>& lo, const std::optional<Scalar>& hi) {
  const bool float_bound = (lo && lo->is_floating()) || (hi && hi->is_floating());
  return !is_floating(x.dtype()) && float_bound ? kDefaultFloat : x.dtype();
}

void check_clamp(const Tensor& x, const std::optional<Scalar>& lo, const std::optional<Scalar>& hi, const char* op) {
  check_operand(x, op);
  EMBER_CHECK(lo.has_value() || hi.has_value(), ValueError, op, ": at least one of min and max must be given");
  EMBER_CHECK(x.dtype() != DType::boolean, DTypeError, op, ": bool tensors are not supported");
}

/// out = clamp(x) on out's device.
void run_clamp(const Tensor& out, const Tensor& x, const std::optional<Scalar>& lo, const std::optional<Scalar>& hi) {
  if (out.is_cuda()) cuda_backend::clamp(out, x, lo, hi);
  else cpu::clamp(out, x, lo, hi);
}

/// Gradient passes where lo <= x <= hi.
Tensor clamp_grad(const Tensor& g, const Tensor& x, const std::optional<Scalar>& lo, const std::optional<Scalar>& hi) {
  Tensor mask;
  if (lo) mask = ge(x, *lo);
  if (hi) mask = mask.defined() ? logical_and(mask, le(x, *hi)) : le(x, *hi);
  return where(mask, g, 0.0);
}

}  // namespace

Tensor clamp(const Tensor& x, std::optional<Scalar> lo, std::optional<Scalar> hi) {
  check_clamp(x, lo, hi, "clamp");
  const DType dt = clamp_dtype(x, lo, hi);
  Tensor out = empty(x.shape(), {.dtype = dt, .device = x.device()});
  {
    NoGradGuard ng;
    run_clamp(out, cast(x, dt), lo, hi);
  }
  return record_unary("ClampBackward1", x, out, x,
                      [lo, hi](const Tensor& g, const Tensor& v) { return clamp_grad(g, v, lo, hi); });
}

Tensor& clamp_(Tensor& x, std::optional<Scalar> lo, std::optional<Scalar> hi) {
  check_clamp(x, lo, hi, "clamp_");
  const DType dt = clamp_dtype(x, lo, hi);
  EMBER_CHECK(dt == x.dtype(), DTypeError, "clamp_: result type ", dtype_name(dt),
              " can't be cast to the desired output type ", dtype_name(x.dtype()));
  autograd::check_inplace(x, "clamp_");
  const bool grad = autograd::any_requires_grad({&x});
  Tensor old;
  {
    NoGradGuard ng;
    if (grad) old = x.clone();  // the mask needs the values before clamping
    run_clamp(x, x, lo, hi);
  }
  x.storage()->bump_version();
  if (grad) {
    autograd::record("ClampBackward1", {x}, x, [s = autograd::SavedTensor(old), lo, hi](const Grads& g, const Needs&) {
      return Grads{clamp_grad(g[0], s.get(), lo, hi)};
    });
  }
  return x;
}

Tensor& relu_(Tensor& x) {
  check_operand(x, "relu_");
  reject_bool(x, "relu_");
  autograd::check_inplace(x, "relu_");
  {
    NoGradGuard ng;
    run_unary(UnaryOp::relu, x, x);
  }
  x.storage()->bump_version();
  if (autograd::any_requires_grad({&x})) {
    // relu(x) > 0 exactly where x > 0, so the output is enough for the mask.
    autograd::record("ReluBackward0", {x}, x, [s = autograd::SavedTensor(x)](const Grads& g, const Needs&) {
      return Grads{fused_backward(BinaryOp::threshold_backward, g[0], s.get())};
    });
  }
  return x;
}

// ------------------------------------------------------------------ logical and tests
Tensor logical_not(const Tensor& x) {
  check_operand(x, "logical_not");
  Tensor out = empty(x.shape(), {.dtype = kBool, .device = x.device()});
  NoGradGuard ng;
  run_unary(UnaryOp::logical_not, out, cast(x, kBool));
  return out;
}

namespace {
Tensor test_op(UnaryOp op, const char* name, const Tensor& x) {
  check_operand(x, name);
  Tensor out = empty(x.shape(), {.dtype = kBool, .device = x.device()});
  NoGradGuard ng;
  run_unary(op, out, x);
  return out;
}
}  // namespace

Tensor isfinite(const Tensor& x) { return test_op(UnaryOp::isfinite, "isfinite", x); }
Tensor isnan(const Tensor& x) { return test_op(UnaryOp::isnan, "isnan", x); }
Tensor isinf(const Tensor& x) { return test_op(UnaryOp::isinf, "isinf", x); }

// ------------------------------------------------------------------ Tensor members
Tensor Tensor::neg() const { return ember::neg(*this); }
Tensor Tensor::abs() const { return ember::abs(*this); }
Tensor Tensor::exp() const { return ember::exp(*this); }
Tensor Tensor::log() const { return ember::log(*this); }
Tensor Tensor::sqrt() const { return ember::sqrt(*this); }
Tensor Tensor::rsqrt() const { return ember::rsqrt(*this); }
Tensor Tensor::tanh() const { return ember::tanh(*this); }
Tensor Tensor::sigmoid() const { return ember::sigmoid(*this); }
Tensor Tensor::relu() const { return ember::relu(*this); }
Tensor Tensor::clamp(std::optional<Scalar> min, std::optional<Scalar> max) const {
  return ember::clamp(*this, min, max);
}

}  // namespace ember
