// Host side of the CUDA elementwise, reduction and softmax ops: dtype and op mapping, layout
// analysis (contiguous fast path or coalesced offset calculator) and launches on the current
// stream. Inputs were validated by src/ops; what is checked here is what only this backend
// cannot do (dtypes, devices, rank).
#include <algorithm>
#include <optional>

#include "cuda/check.hpp"
#include "cuda/kernels.hpp"
#include "cuda/runtime.hpp"
#include "ember/backend/cuda.hpp"

namespace ember::cuda_backend {
namespace {

using kernels::BinOp;
using kernels::FloatType;
using kernels::UnOp;

FloatType float_type(DType d, const char* op) {
  if (const auto t = kernel_float_type(d)) return *t;
  EMBER_THROW(NotImplemented, op, " on CUDA: dtype ", dtype_name(d),
              " is not supported yet (float32, float64, float16 and bfloat16 are)");
}

/// The device address of an optimizer's skip flag (nullptr when `skip` is undefined), after
/// checking that it is a 0-d bool on `device`.
const bool* skip_flag_ptr(const char* what, const Tensor& skip, Device device) {
  if (!skip.defined()) return nullptr;
  EMBER_CHECK(skip.device() == device && skip.dtype() == kBool && skip.numel() == 1, ValueError, what,
              " on CUDA: the skip flag must be a 0-d bool on ", device.str(), ", got ", dtype_name(skip.dtype()),
              " on ", skip.device().str());
  return static_cast<const bool*>(skip.data_ptr());
}

/// The device of `t` after checking it is usable; every other defined tensor must be on it.
/// All must be contiguous (`what` and `what_others` name them in the errors).
int contiguous_on_device(const char* op, const Tensor& t, std::initializer_list<const Tensor*> others,
                         const char* what, const char* what_others) {
  const int dev = t.device().index;
  check_device(dev, op);
  EMBER_CHECK(t.is_contiguous(), ValueError, op, " on CUDA: expected ", what);
  for (const Tensor* o : others) {
    if (!o->defined()) continue;
    EMBER_CHECK(o->device() == t.device(), DeviceError, op, ": expected all tensors on ", t.device().str(),
                ", got one on ", o->device().str());
    EMBER_CHECK(o->is_contiguous(), ValueError, op, " on CUDA: expected ", what_others);
  }
  return dev;
}

BinOp bin_op(cpu::BinaryOp op) {
  using B = cpu::BinaryOp;
  switch (op) {
    case B::add: return BinOp::add;
    case B::sub: return BinOp::sub;
    case B::mul: return BinOp::mul;
    case B::div: return BinOp::div;
    case B::maximum: return BinOp::maximum;
    case B::minimum: return BinOp::minimum;
    case B::pow: return BinOp::pow;
    case B::eq: return BinOp::eq;
    case B::ne: return BinOp::ne;
    case B::lt: return BinOp::lt;
    case B::le: return BinOp::le;
    case B::gt: return BinOp::gt;
    case B::ge: return BinOp::ge;
    case B::threshold_backward: return BinOp::threshold_backward;
    case B::tanh_backward: return BinOp::tanh_backward;
    case B::sigmoid_backward: return BinOp::sigmoid_backward;
    case B::gelu_backward: return BinOp::gelu_backward;
    case B::gelu_tanh_backward: return BinOp::gelu_tanh_backward;
    case B::silu_backward: return BinOp::silu_backward;
    case B::logical_and: return BinOp::logical_and;
    case B::logical_or: return BinOp::logical_or;
  }
  EMBER_THROW(ValueError, "binary op on CUDA: unknown op code ", static_cast<int>(op));
}

void reduce_more(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g, cpu::ReduceKind kind, double p);

bool is_logical(cpu::BinaryOp op) { return op == cpu::BinaryOp::logical_and || op == cpu::BinaryOp::logical_or; }

/// The predicate kernels (bool out, any input dtype) for the unary ops that have one.
std::optional<kernels::PredOp> pred_op(cpu::UnaryOp op) {
  switch (op) {
    case cpu::UnaryOp::logical_not: return kernels::PredOp::logical_not;
    case cpu::UnaryOp::isfinite: return kernels::PredOp::isfinite;
    case cpu::UnaryOp::isnan: return kernels::PredOp::isnan;
    case cpu::UnaryOp::isinf: return kernels::PredOp::isinf;
    default: return std::nullopt;
  }
}

UnOp un_op(cpu::UnaryOp op) {
  EMBER_CHECK(op <= cpu::UnaryOp::silu, NotImplemented,
              "logical_not/isfinite/isnan/isinf on CUDA tensors are not supported yet");
  // kernels::UnOp lists the same ops in the same order up to silu.
  return static_cast<UnOp>(static_cast<int>(op));
}

/// t on out's device: a one-element CPU tensor (a wrapped scalar) is copied to the device
/// through a fill (no host synchronisation); any other CPU tensor is an error.
Tensor on_device(const Tensor& t, const Tensor& out, const char* op) {
  if (t.device() == out.device()) return t;
  EMBER_CHECK(t.is_cpu() && t.numel() == 1, DeviceError, op, ": expected all tensors on ", out.device().str(),
              ", got one on ", t.device().str(), " (only one-element CPU tensors are moved implicitly)");
  Tensor d = empty({}, {.dtype = t.dtype(), .device = out.device()});
  fill(d, t.item_scalar());
  return d;
}

/// Layout of out (operand 0) and up to two inputs broadcast to out's shape.
kernels::ElementwiseArgs layout(const Tensor& out, const Tensor* a, const Tensor* b, const char* op) {
  kernels::ElementwiseArgs g;
  g.out = out.data_ptr();
  g.a = a ? a->data_ptr() : nullptr;
  g.b = b ? b->data_ptr() : nullptr;
  g.numel = out.numel();
  const Tensor* ins[2] = {a, b};
  bool contiguous = out.is_contiguous();
  bool scalar[2] = {false, false};
  for (int k = 0; k < 2; ++k) {
    if (!ins[k]) continue;
    scalar[k] = ins[k]->numel() == 1;
    contiguous = contiguous && (scalar[k] || (ins[k]->is_contiguous() && ins[k]->numel() == g.numel));
  }
  if (contiguous) {
    g.contiguous = true;
    g.scalar_a = scalar[0];
    g.scalar_b = scalar[1];
    return g;
  }
  // Offset calculator: trailing-aligned dims, stride 0 where an input broadcasts; then size-1
  // dims are dropped and dims that are contiguous for every operand merged.
  const int64_t nd = out.dim();
  std::vector<int64_t> sizes, strides[3];
  for (int64_t d = 0; d < nd; ++d) {
    if (out.size(d) == 1) continue;
    sizes.push_back(out.size(d));
    strides[0].push_back(out.stride(d));
    for (int k = 0; k < 2; ++k) {
      int64_t s = 0;
      if (ins[k]) {
        const int64_t sd = d - (nd - ins[k]->dim());
        s = (sd < 0 || ins[k]->size(sd) == 1) ? 0 : ins[k]->stride(sd);
      }
      strides[k + 1].push_back(s);
    }
  }
  for (size_t d = sizes.size(); d-- > 1;) {  // merge dim d-1 into d when all operands allow
    bool ok = true;
    for (auto& st : strides) ok = ok && st[d - 1] == st[d] * sizes[d];
    if (!ok) continue;
    sizes[d] *= sizes[d - 1];
    sizes.erase(sizes.begin() + static_cast<std::ptrdiff_t>(d - 1));
    for (auto& st : strides) st.erase(st.begin() + static_cast<std::ptrdiff_t>(d - 1));
  }
  EMBER_CHECK(sizes.size() <= static_cast<size_t>(kernels::kMaxDims), NotImplemented, op, " on CUDA: ", sizes.size(),
              " non-mergeable dimensions (at most ", kernels::kMaxDims, " are supported)");
  g.calc.ndim = static_cast<int32_t>(sizes.size());
  for (size_t d = 0; d < sizes.size(); ++d) {
    g.calc.sizes[d] = sizes[d];
    for (int k = 0; k < 3; ++k) g.calc.strides[k][d] = strides[k][d];
  }
  return g;
}

}  // namespace

void binary(cpu::BinaryOp op, const Tensor& out, const Tensor& a_in, const Tensor& b_in, const Scalar& alpha) {
  const char* name = "binary op";
  const BinOp k = bin_op(op);
  const DType dt = a_in.dtype();
  EMBER_CHECK(b_in.dtype() == dt, DTypeError, name, " on CUDA: both inputs must have one dtype, got ", dtype_name(dt),
              " and ", dtype_name(b_in.dtype()));
  EMBER_CHECK(!is_logical(op) || dt == kBool, DTypeError, name,
              " on CUDA: logical_and/logical_or take bool inputs, got ", dtype_name(dt));
  const bool integral = !is_floating(dt);
  if (integral) {
    EMBER_CHECK(op != cpu::BinaryOp::div && op < cpu::BinaryOp::threshold_backward, DTypeError, name,
                " on CUDA: this op needs floating-point inputs, got ", dtype_name(dt));
    EMBER_CHECK(!(dt == kBool && (op == cpu::BinaryOp::sub || op == cpu::BinaryOp::pow)), DTypeError, name,
                " on CUDA: sub and pow are not defined for bool tensors");
  }
  const FloatType t = integral ? FloatType::f32 : float_type(dt, name);
  if (out.numel() == 0) return;
  const int dev = out.device().index;
  check_device(dev, name);
  DeviceGuard guard(dev);
  Tensor a = on_device(a_in, out, name), b = on_device(b_in, out, name);
  const kernels::ElementwiseArgs g = layout(out, &a, &b, name);
  if (integral) {
    EMBER_CUDA_CHECK(kernels::binary_int(k, kernel_elem_type(dt), g, alpha.to_int(), current_stream(dev)));
  } else {
    EMBER_CUDA_CHECK(kernels::binary(k, t, g, alpha.to_double(), current_stream(dev)));
  }
}

void unary(cpu::UnaryOp op, const Tensor& out, const Tensor& x_in) {
  const char* name = "unary op";
  if (const auto pred = pred_op(op)) {
    EMBER_CHECK(out.dtype() == kBool, DTypeError, name, " on CUDA: logical_not/isfinite/isnan/isinf write bool, got ",
                dtype_name(out.dtype()));
    if (out.numel() == 0) return;
    const int dev = out.device().index;
    check_device(dev, name);
    DeviceGuard guard(dev);
    Tensor x = on_device(x_in, out, name);
    const kernels::ElementwiseArgs g = layout(out, &x, nullptr, name);
    EMBER_CUDA_CHECK(kernels::unary_predicate(*pred, kernel_elem_type(x.dtype()), g, current_stream(dev)));
    return;
  }
  const UnOp k = un_op(op);
  if (!is_floating(x_in.dtype())) {
    const bool ok = k == UnOp::neg || k == UnOp::abs || k == UnOp::sign || k == UnOp::square || k == UnOp::relu;
    EMBER_CHECK(ok, DTypeError, name, " on CUDA: this op needs a floating-point input, got ",
                dtype_name(x_in.dtype()));
    EMBER_CHECK(x_in.dtype() != kBool || k == UnOp::sign, DTypeError, name,
                " on CUDA: bool tensors are not supported by this op");
    if (out.numel() == 0) return;
    const int dev = out.device().index;
    check_device(dev, name);
    DeviceGuard guard(dev);
    Tensor x = on_device(x_in, out, name);
    const kernels::ElementwiseArgs g = layout(out, &x, nullptr, name);
    EMBER_CUDA_CHECK(kernels::unary_int(k, kernel_elem_type(x.dtype()), g, current_stream(dev)));
    return;
  }
  const FloatType t = float_type(x_in.dtype(), name);
  if (out.numel() == 0) return;
  const int dev = out.device().index;
  check_device(dev, name);
  DeviceGuard guard(dev);
  Tensor x = on_device(x_in, out, name);
  const kernels::ElementwiseArgs g = layout(out, &x, nullptr, name);
  EMBER_CUDA_CHECK(kernels::unary(k, t, g, current_stream(dev)));
}

void where(const Tensor& out, const Tensor& cond_in, const Tensor& a_in, const Tensor& b_in) {
  const char* name = "where";
  if (out.numel() == 0) return;
  const int dev = out.device().index;
  check_device(dev, name);
  DeviceGuard guard(dev);
  Tensor cond = on_device(cond_in, out, name), a = on_device(a_in, out, name), b = on_device(b_in, out, name);
  const int64_t nd = out.dim();
  EMBER_CHECK(nd <= kernels::kMaxDims, NotImplemented, "where on CUDA: tensors of ", nd, " dimensions (at most ",
              kernels::kMaxDims, ")");
  kernels::OffsetCalc c;
  int64_t cond_strides[kernels::kMaxDims] = {};
  c.ndim = static_cast<int32_t>(nd);
  auto bstride = [&](const Tensor& x, int64_t d) {
    const int64_t sd = d - (nd - x.dim());
    return (sd < 0 || x.size(sd) == 1) ? int64_t{0} : x.stride(sd);
  };
  for (int64_t d = 0; d < nd; ++d) {
    c.sizes[d] = out.size(d);
    c.strides[0][d] = out.stride(d);
    c.strides[1][d] = bstride(a, d);
    c.strides[2][d] = bstride(b, d);
    cond_strides[d] = bstride(cond, d);
  }
  // Every dtype: the values are only copied, as raw element bits.
  EMBER_CUDA_CHECK(kernels::where_bytes(static_cast<int>(itemsize(out.dtype())), out.data_ptr(),
                                        static_cast<const uint8_t*>(cond.data_ptr()), a.data_ptr(), b.data_ptr(),
                                        out.numel(), c, cond_strides, current_stream(dev)));
}

void reduce(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& geom, cpu::ReduceKind kind, double p) {
  if (!is_floating(in.dtype()) || kind == cpu::ReduceKind::kProd || kind == cpu::ReduceKind::kNormP ||
      kind == cpu::ReduceKind::kNormInf || kind == cpu::ReduceKind::kNormNegInf) {
    reduce_more(out, in, geom, kind, p);
    return;
  }
  kernels::RedOp op;
  switch (kind) {
    case cpu::ReduceKind::kSum: op = kernels::RedOp::sum; break;
    case cpu::ReduceKind::kMean: op = kernels::RedOp::mean; break;
    case cpu::ReduceKind::kMax: op = kernels::RedOp::max; break;
    case cpu::ReduceKind::kMin: op = kernels::RedOp::min; break;
    default: EMBER_THROW(ValueError, "reduction on CUDA: unknown reduction kind ", static_cast<int>(kind));
  }
  const FloatType t = float_type(in.dtype(), "reduction");
  const int64_t outer = geom.outer, size = geom.size, inner = geom.inner;
  if (outer * inner == 0) return;
  const int64_t splits = kernels::chunk_splits(outer, size, inner);
  const int dev = out.device().index;
  DeviceGuard guard(dev);
  Tensor ws;
  if (splits > 1) ws = scratch(dev, outer * splits * inner * kernels::accumulator_size(t));
  EMBER_CUDA_CHECK(kernels::reduce(op, t, out.data_ptr(), in.data_ptr(), outer, size, inner, splits, ptr_or_null(ws),
                                   current_stream(dev)));
}

void softmax(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g, bool log) {
  const FloatType t = float_type(in.dtype(), log ? "log_softmax" : "softmax");
  const int dev = out.device().index;
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(
      kernels::softmax(t, out.data_ptr(), in.data_ptr(), g.outer, g.size, g.inner, log, current_stream(dev)));
}

void softmax_backward(const Tensor& gx, const Tensor& gy, const Tensor& y, const cpu::ReduceGeom& g, bool log) {
  const FloatType t = float_type(y.dtype(), log ? "log_softmax backward" : "softmax backward");
  const int dev = gx.device().index;
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::softmax_backward(t, gx.data_ptr(), gy.data_ptr(), y.data_ptr(), g.outer, g.size, g.inner,
                                             log, current_stream(dev)));
}

void cross_entropy_forward(const Tensor& x, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                           const Tensor& lse, const Tensor& nll, const Tensor& smooth, const Tensor& wt) {
  const int dev = x.device().index;
  check_device(dev, "cross_entropy");
  EMBER_CHECK(x.dtype() == kFloat32 || x.dtype() == kFloat64, NotImplemented,
              "cross_entropy on CUDA: computes in float32 or float64, got ", dtype_name(x.dtype()));
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::cross_entropy_forward(x.dtype() == kFloat64, x.data_ptr(),
                                                  static_cast<const int64_t*>(target.data_ptr()), ptr_or_null(weight),
                                                  ignore_index, x.size(0), x.size(1), lse.data_ptr(), nll.data_ptr(),
                                                  smooth.data_ptr(), wt.data_ptr(), current_stream(dev)));
}

void cross_entropy_backward(const Tensor& x, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                            double label_smoothing, const Tensor& lse, const Tensor& row_scale, const Tensor& grad) {
  const int dev = x.device().index;
  check_device(dev, "cross_entropy backward");
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::cross_entropy_backward(x.dtype() == kFloat64, x.data_ptr(),
                                                   static_cast<const int64_t*>(target.data_ptr()), ptr_or_null(weight),
                                                   ignore_index, label_smoothing, x.size(0), x.size(1), lse.data_ptr(),
                                                   row_scale.data_ptr(), grad.data_ptr(), current_stream(dev)));
}

void adam_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, double lr, double beta1,
               double beta2, double eps, double weight_decay, double bias_correction2_sqrt, double step_size,
               bool decoupled) {
  const int dev = p.device().index;
  check_device(dev, "Adam");
  EMBER_CHECK(p.dtype() == kFloat32 || p.dtype() == kFloat64, NotImplemented,
              "Adam on CUDA: float32 or float64 parameters, got ", dtype_name(p.dtype()));
  DeviceGuard guard(dev);
  const kernels::AdamParams hp{lr, beta1, beta2, eps, weight_decay, bias_correction2_sqrt, step_size, decoupled};
  EMBER_CUDA_CHECK(kernels::adam_step(p.dtype() == kFloat64, p.data_ptr(), g.data_ptr(), m.data_ptr(), v.data_ptr(),
                                      p.numel(), hp, current_stream(dev)));
}

void adam_step_guarded(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const Tensor& step,
                       const Tensor& skip, double lr, double beta1, double beta2, double eps, double weight_decay,
                       bool decoupled) {
  const int dev = p.device().index;
  check_device(dev, "Adam");
  EMBER_CHECK(p.dtype() == kFloat32 || p.dtype() == kFloat64, NotImplemented,
              "Adam on CUDA: float32 or float64 parameters, got ", dtype_name(p.dtype()));
  EMBER_CHECK(step.device() == p.device() && step.dtype() == kFloat64 && step.numel() == 1, ValueError,
              "Adam on CUDA: a guarded step needs a 0-d float64 step count on ", p.device().str(), ", got ",
              dtype_name(step.dtype()), " on ", step.device().str());
  EMBER_CHECK(skip.defined(), ValueError, "Adam on CUDA: a guarded step needs a skip flag");
  const bool* skip_ptr = skip_flag_ptr("Adam", skip, p.device());
  DeviceGuard guard(dev);
  const kernels::AdamParams hp{lr, beta1, beta2, eps, weight_decay, 0.0, 0.0, decoupled};
  EMBER_CUDA_CHECK(kernels::adam_step_guarded(p.dtype() == kFloat64, p.data_ptr(), g.data_ptr(), m.data_ptr(),
                                              v.data_ptr(), p.numel(), static_cast<double*>(step.data_ptr()),
                                              skip_ptr, hp, current_stream(dev)));
}

void sgd_step(const Tensor& p, const Tensor& g, const Tensor& buf, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool first, const Tensor& skip) {
  const int dev = p.device().index;
  check_device(dev, "SGD");
  EMBER_CHECK(p.dtype() == kFloat32 || p.dtype() == kFloat64, NotImplemented,
              "SGD on CUDA: float32 or float64 parameters, got ", dtype_name(p.dtype()));
  const bool* skip_ptr = skip_flag_ptr("SGD", skip, p.device());
  DeviceGuard guard(dev);
  const kernels::SgdParams hp{lr, momentum, dampening, weight_decay, nesterov, first};
  EMBER_CUDA_CHECK(kernels::sgd_step(p.dtype() == kFloat64, p.data_ptr(), g.data_ptr(), ptr_or_null(buf), p.numel(),
                                     skip_ptr, hp, current_stream(dev)));
}

}  // namespace ember::cuda_backend

// ------------------------------------------------------------------ layers: pooling, batch norm, dropout
namespace ember::cuda_backend {
namespace {

kernels::PoolGeometry pool_geometry(const PoolGeom& g) {
  return {g.planes, g.h, g.w, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
}

/// The device of `t` after checking it is usable; every other tensor must be on it, contiguous.
int layer_device(const char* op, const Tensor& t, std::initializer_list<const Tensor*> others) {
  return contiguous_on_device(op, t, others, "a contiguous tensor", "contiguous tensors");
}

}  // namespace

void max_pool2d(const Tensor& out, const Tensor& indices, const Tensor& x, const PoolGeom& g) {
  const auto t = float_type(x.dtype(), "max_pool2d");
  const int dev = layer_device("max_pool2d", x, {&out, &indices});
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::max_pool2d(t, out.data_ptr(), static_cast<int64_t*>(indices.data_ptr()), x.data_ptr(),
                                       pool_geometry(g), current_stream(dev)));
}

void max_pool2d_backward(const Tensor& gx, const Tensor& gy, const Tensor& indices, const PoolGeom& g) {
  const auto t = float_type(gx.dtype(), "max_pool2d backward");
  const int dev = layer_device("max_pool2d backward", gx, {&gy, &indices});
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::max_pool2d_backward(t, gx.data_ptr(), gy.data_ptr(),
                                                static_cast<const int64_t*>(indices.data_ptr()), pool_geometry(g),
                                                current_stream(dev)));
}

void avg_pool2d(const Tensor& out, const Tensor& x, const PoolGeom& g, bool count_include_pad) {
  const auto t = float_type(x.dtype(), "avg_pool2d");
  const int dev = layer_device("avg_pool2d", x, {&out});
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(
      kernels::avg_pool2d(t, out.data_ptr(), x.data_ptr(), pool_geometry(g), count_include_pad, current_stream(dev)));
}

void avg_pool2d_backward(const Tensor& gx, const Tensor& gy, const PoolGeom& g, bool count_include_pad) {
  const auto t = float_type(gx.dtype(), "avg_pool2d backward");
  const int dev = layer_device("avg_pool2d backward", gx, {&gy});
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::avg_pool2d_backward(t, gx.data_ptr(), gy.data_ptr(), pool_geometry(g), count_include_pad,
                                                current_stream(dev)));
}

void adaptive_avg_pool2d(const Tensor& out, const Tensor& x, const PoolGeom& g) {
  const auto t = float_type(x.dtype(), "adaptive_avg_pool2d");
  const int dev = layer_device("adaptive_avg_pool2d", x, {&out});
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(
      kernels::adaptive_avg_pool2d(t, out.data_ptr(), x.data_ptr(), pool_geometry(g), current_stream(dev)));
}

void adaptive_avg_pool2d_backward(const Tensor& gx, const Tensor& gy, const PoolGeom& g) {
  const auto t = float_type(gx.dtype(), "adaptive_avg_pool2d backward");
  const int dev = layer_device("adaptive_avg_pool2d backward", gx, {&gy});
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(
      kernels::adaptive_avg_pool2d_backward(t, gx.data_ptr(), gy.data_ptr(), pool_geometry(g), current_stream(dev)));
}

namespace {
/// Per-channel tensors hold accumulators: f64 for f64 data, f32 otherwise.
void check_channel_acc(const char* op, const Tensor& data, std::initializer_list<const Tensor*> per_channel,
                       int64_t c) {
  const DType acc = data.dtype() == kFloat64 ? kFloat64 : kFloat32;
  for (const Tensor* t : per_channel) {
    if (!t->defined()) continue;
    EMBER_CHECK(t->dtype() == acc && t->numel() == c, ValueError, op, " on CUDA: expected per-channel tensors of ", c,
                " ", dtype_name(acc), " elements, got ", t->numel(), " of ", dtype_name(t->dtype()));
  }
}
}  // namespace

void batch_norm_moments(const Tensor& x, const ChannelGeom& g, double eps, const Tensor& mean, const Tensor& var,
                        const Tensor& invstd) {
  const auto t = float_type(x.dtype(), "batch_norm");
  const int dev = layer_device("batch_norm", x, {&mean, &var, &invstd});
  check_channel_acc("batch_norm", x, {&mean, &var, &invstd}, g.c);
  DeviceGuard guard(dev);
  // Per-chunk partials (each channel is reduced by several blocks); alive until the kernels are enqueued.
  const Tensor ws = scratch(dev, std::max<int64_t>(1, kernels::batch_norm_workspace_bytes(g.n, g.c, g.s)));
  EMBER_CUDA_CHECK(kernels::batch_norm_moments(t, x.data_ptr(), g.n, g.c, g.s, eps, mean.data_ptr(), var.data_ptr(),
                                               invstd.data_ptr(), ws.data_ptr(), current_stream(dev)));
}

void batch_norm_invstd(const Tensor& var, double eps, const Tensor& invstd) {
  const int dev = layer_device("batch_norm", var, {&invstd});
  EMBER_CHECK((var.dtype() == kFloat32 || var.dtype() == kFloat64) && invstd.dtype() == var.dtype() &&
                  invstd.numel() == var.numel(),
              ValueError, "batch_norm on CUDA: expected f32 or f64 var and invstd of one dtype and size, got ",
              dtype_name(var.dtype()), " and ", dtype_name(invstd.dtype()));
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::batch_norm_invstd(var.dtype() == kFloat64, var.data_ptr(), eps, var.numel(),
                                              invstd.data_ptr(), current_stream(dev)));
}

void batch_norm_apply(const Tensor& out, const Tensor& x, const ChannelGeom& g, const Tensor& mean,
                      const Tensor& invstd, const Tensor& weight, const Tensor& bias) {
  const auto t = float_type(x.dtype(), "batch_norm");
  const int dev = layer_device("batch_norm", x, {&out, &mean, &invstd, &weight, &bias});
  check_channel_acc("batch_norm", x, {&mean, &invstd}, g.c);
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::batch_norm_apply(t, out.data_ptr(), x.data_ptr(), g.n, g.c, g.s, mean.data_ptr(),
                                             invstd.data_ptr(), ptr_or_null(weight), ptr_or_null(bias),
                                             current_stream(dev)));
}

void batch_norm_grad_sums(const Tensor& gy, const Tensor& x, const ChannelGeom& g, const Tensor& mean,
                          const Tensor& sum_gy, const Tensor& sum_gy_xmu) {
  const auto t = float_type(x.dtype(), "batch_norm backward");
  const int dev = layer_device("batch_norm backward", x, {&gy, &mean, &sum_gy, &sum_gy_xmu});
  check_channel_acc("batch_norm backward", x, {&mean, &sum_gy, &sum_gy_xmu}, g.c);
  DeviceGuard guard(dev);
  const Tensor ws = scratch(dev, std::max<int64_t>(1, kernels::batch_norm_workspace_bytes(g.n, g.c, g.s)));
  EMBER_CUDA_CHECK(kernels::batch_norm_grad_sums(t, gy.data_ptr(), x.data_ptr(), g.n, g.c, g.s, mean.data_ptr(),
                                                 sum_gy.data_ptr(), sum_gy_xmu.data_ptr(), ws.data_ptr(),
                                                 current_stream(dev)));
}

void batch_norm_backward_input(const Tensor& gx, const Tensor& gy, const Tensor& x, const ChannelGeom& g,
                               const Tensor& mean, const Tensor& invstd, const Tensor& weight, const Tensor& sum_gy,
                               const Tensor& sum_gy_xmu, bool training) {
  const auto t = float_type(x.dtype(), "batch_norm backward");
  const int dev = layer_device("batch_norm backward", x, {&gx, &gy, &mean, &invstd, &weight, &sum_gy, &sum_gy_xmu});
  check_channel_acc("batch_norm backward", x, {&mean, &invstd, &sum_gy, &sum_gy_xmu}, g.c);
  EMBER_CHECK(!training || (mean.defined() && sum_gy.defined() && sum_gy_xmu.defined()), ValueError,
              "batch_norm backward on CUDA: training needs the batch mean and the gradient sums");
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::batch_norm_backward_input(
      t, gx.data_ptr(), gy.data_ptr(), x.data_ptr(), g.n, g.c, g.s, ptr_or_null(mean), invstd.data_ptr(),
      ptr_or_null(weight), ptr_or_null(sum_gy), ptr_or_null(sum_gy_xmu), training, current_stream(dev)));
}

void dropout(const Tensor& out, const Tensor& mask, const Tensor& x, double p, GeneratorState state) {
  const auto t = float_type(x.dtype(), "dropout");
  const int dev = layer_device("dropout", x, {&out, &mask});
  EMBER_CHECK(p >= 0.0 && p < 1.0, ValueError, "dropout on CUDA: expected 0 <= p < 1, got ", p);
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::dropout(t, out.data_ptr(), mask.data_ptr(), x.data_ptr(), x.numel(), state.seed,
                                    state.offset, p, current_stream(dev)));
}

}  // namespace ember::cuda_backend

// ------------------------------------------------------------------ more reductions, clamp (kernels/reduce_ext.cu,
// kernels/elementwise_int.cu)
namespace ember::cuda_backend {
namespace {

/// The device of `in`, checked, with `out` (and any other defined tensor) on it and contiguous.
int reduction_device(const char* op, const Tensor& in, std::initializer_list<const Tensor*> outs) {
  return contiguous_on_device(op, in, outs, "a contiguous (outer, size, inner) block", "contiguous outputs");
}

void reduce_more(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g, cpu::ReduceKind kind, double p) {
  using K = kernels::ExtRedOp;
  const bool floating = is_floating(in.dtype());
  K op;
  switch (kind) {
    case cpu::ReduceKind::kSum: op = K::sum; break;
    case cpu::ReduceKind::kProd: op = K::prod; break;
    case cpu::ReduceKind::kMax: op = K::max; break;
    case cpu::ReduceKind::kMin: op = K::min; break;
    case cpu::ReduceKind::kNormInf: op = K::norm_inf; break;
    case cpu::ReduceKind::kNormNegInf: op = K::norm_neg_inf; break;
    case cpu::ReduceKind::kNormP:
      op = p == 0.0 ? K::norm0 : p == 1.0 ? K::norm1 : p == 2.0 ? K::norm2 : K::norm_p;
      break;
    default:
      EMBER_THROW(DTypeError, "reduction on CUDA: dtype ", dtype_name(in.dtype()),
                  " is not supported by this reduction (mean needs a floating-point input)");
  }
  EMBER_CHECK(floating || op == K::sum || op == K::prod || op == K::max || op == K::min, DTypeError,
              "norm on CUDA: expected a floating-point input, got ", dtype_name(in.dtype()));
  const DType want = (!floating && (op == K::sum || op == K::prod)) ? kInt64 : in.dtype();
  EMBER_CHECK(out.dtype() == want, DTypeError, "reduction on CUDA: expected a ", dtype_name(want), " output, got ",
              dtype_name(out.dtype()));
  const int dev = reduction_device("reduction", in, {&out});
  if (g.outer * g.inner == 0) return;
  DeviceGuard guard(dev);
  // Long reductions in chunks (a whole-tensor sum, as StepGuard's sum(isfinite(grad)), would
  // otherwise run on one block); the workspace lives until the kernels are enqueued.
  const int64_t splits = kernels::chunk_splits(g.outer, g.size, g.inner);
  Tensor ws;
  if (splits > 1) ws = scratch(dev, g.outer * splits * g.inner * 8);
  EMBER_CUDA_CHECK(kernels::reduce_ext(op, kernel_elem_type(in.dtype()), out.data_ptr(), in.data_ptr(), g.outer, g.size,
                                       g.inner, p, splits, ptr_or_null(ws), current_stream(dev)));
}

}  // namespace

void reduce_arg(const Tensor& values, const Tensor& indices, const Tensor& in, const cpu::ReduceGeom& g, bool is_max) {
  const char* name = is_max ? "argmax" : "argmin";
  const int dev = reduction_device(name, in, {&values, &indices});
  EMBER_CHECK(indices.dtype() == kInt64, DTypeError, name, " on CUDA: indices must be int64, got ",
              dtype_name(indices.dtype()));
  EMBER_CHECK(!values.defined() || values.dtype() == in.dtype(), DTypeError, name,
              " on CUDA: values must have the input's dtype ", dtype_name(in.dtype()));
  if (g.outer * g.inner == 0) return;
  EMBER_CHECK(g.size > 0, IndexError, name, " on CUDA: cannot reduce over a dimension of size 0");
  DeviceGuard guard(dev);
  // Long reductions in chunks (argmax over a flattened tensor would otherwise run on one
  // block); the workspace lives until the kernels are enqueued.
  const int64_t splits = kernels::chunk_splits(g.outer, g.size, g.inner);
  Tensor ws;
  if (splits > 1) ws = scratch(dev, kernels::arg_workspace_bytes(g.outer, g.inner, splits));
  EMBER_CUDA_CHECK(kernels::reduce_arg(kernel_elem_type(in.dtype()), ptr_or_null(values),
                                       static_cast<int64_t*>(indices.data_ptr()), in.data_ptr(), g.outer, g.size,
                                       g.inner, is_max, splits, ptr_or_null(ws), current_stream(dev)));
}

void var(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g, int64_t correction, bool take_sqrt) {
  const char* name = take_sqrt ? "std" : "var";
  const FloatType t = float_type(in.dtype(), name);
  const int dev = reduction_device(name, in, {&out});
  if (g.outer * g.inner == 0) return;
  DeviceGuard guard(dev);
  // Long reductions in chunks, as reduce_arg.
  const int64_t splits = kernels::chunk_splits(g.outer, g.size, g.inner);
  Tensor ws;
  if (splits > 1) ws = scratch(dev, kernels::variance_workspace_bytes(g.outer, g.inner, splits));
  EMBER_CUDA_CHECK(kernels::variance(t, out.data_ptr(), in.data_ptr(), g.outer, g.size, g.inner, correction, take_sqrt,
                                     splits, ptr_or_null(ws), current_stream(dev)));
}

void scatter_reduced(const Tensor& gx, const Tensor& gy, const Tensor& indices, const cpu::ReduceGeom& g) {
  const char* name = "max/min backward";
  const FloatType t = float_type(gx.dtype(), name);
  const int dev = reduction_device(name, gx, {&gy, &indices});
  EMBER_CHECK(gy.dtype() == gx.dtype() && indices.dtype() == kInt64, DTypeError, name,
              " on CUDA: expected gy of the gradient's dtype and int64 indices");
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::scatter_reduced(t, gx.data_ptr(), gy.data_ptr(),
                                            static_cast<const int64_t*>(indices.data_ptr()), g.outer, g.size, g.inner,
                                            current_stream(dev)));
}

void clamp(const Tensor& out, const Tensor& x_in, const std::optional<Scalar>& lo, const std::optional<Scalar>& hi) {
  const char* name = "clamp";
  EMBER_CHECK(out.dtype() == x_in.dtype() && out.dtype() != kBool, DTypeError, name,
              " on CUDA: expected a numeric input and output of one dtype, got ", dtype_name(x_in.dtype()), " and ",
              dtype_name(out.dtype()));
  if (out.numel() == 0) return;
  const int dev = out.device().index;
  check_device(dev, name);
  DeviceGuard guard(dev);
  Tensor x = on_device(x_in, out, name);
  kernels::ClampBounds b;
  b.has_lo = lo.has_value();
  b.has_hi = hi.has_value();
  if (lo) {
    b.lo_f = lo->to_double();
    b.lo_i = is_floating(out.dtype()) ? 0 : lo->to_int();
  }
  if (hi) {
    b.hi_f = hi->to_double();
    b.hi_i = is_floating(out.dtype()) ? 0 : hi->to_int();
  }
  const kernels::ElementwiseArgs g = layout(out, &x, nullptr, name);
  EMBER_CUDA_CHECK(kernels::clamp(kernel_elem_type(out.dtype()), g, b, current_stream(dev)));
}

}  // namespace ember::cuda_backend

// ------------------------------------------------------------------ multi-tensor optimizers, clip_grad_norm_
namespace ember::cuda_backend {
namespace {

// Checks the lists of one multi-tensor call: every tensor contiguous, on `device`, of `dtype`
// (f32/f64), `n` long each (undefined entries allowed only where `optional`).
void check_list(const char* what, const std::vector<Tensor>& ts, size_t n, Device device, DType dtype, bool optional,
                const char* name) {
  EMBER_CHECK(ts.size() == n, ValueError, what, ": expected ", n, " ", name, " tensors, got ", ts.size());
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = ts[i];
    if (!t.defined()) {
      EMBER_CHECK(optional, ValueError, what, ": ", name, " tensor ", i, " is undefined");
      continue;
    }
    EMBER_CHECK(t.device() == device, DeviceError, what, ": ", name, " tensor ", i, " is on ", t.device().str(),
                ", expected ", device.str());
    EMBER_CHECK(t.dtype() == dtype, DTypeError, what, ": ", name, " tensor ", i, " has dtype ",
                dtype_name(t.dtype()), ", expected ", dtype_name(dtype));
    EMBER_CHECK(t.is_contiguous(), ValueError, what, ": ", name, " tensor ", i, " is not contiguous");
  }
}

// The device and dtype of a list's first tensor, checked to be a CUDA f32/f64 one.
std::pair<Device, DType> list_kind(const char* what, const std::vector<Tensor>& ts) {
  EMBER_CHECK(!ts.empty() && ts.front().defined(), ValueError, what, ": expected at least one defined tensor");
  const Tensor& t = ts.front();
  EMBER_CHECK(t.is_cuda(), DeviceError, what, ": expected CUDA tensors, got one on ", t.device().str());
  EMBER_CHECK(t.dtype() == kFloat32 || t.dtype() == kFloat64, NotImplemented, what,
              " on CUDA: float32 or float64 tensors, got ", dtype_name(t.dtype()));
  check_device(t.device().index, what);
  return {t.device(), t.dtype()};
}

// Cuts tensors [0, n) into lists of at most kMultiTensorMax entries: set(list, slot, i) fills
// slot `slot` of the list with tensor i (pointers, scalars); launch(list) enqueues one launch.
template <class Set, class Launch>
void for_each_list(const std::vector<Tensor>& first, Set set, Launch launch) {
  kernels::MultiTensorList l;
  auto flush = [&]() {
    if (l.count > 0) EMBER_CUDA_CHECK(launch(l));
    l = kernels::MultiTensorList();
  };
  for (size_t i = 0; i < first.size(); ++i) {
    const int slot = l.count;
    const int64_t n = first[i].numel();
    const int64_t chunks = kernels::multi_tensor_chunks(n);
    EMBER_CHECK(l.chunk_start[slot] + chunks < INT32_MAX, NotImplemented, "multi-tensor launch: tensor ", i,
                " has too many elements (", n, ")");
    l.numel[slot] = n;
    set(l, slot, i);
    l.chunk_start[slot + 1] = l.chunk_start[slot] + static_cast<int32_t>(chunks);
    l.count = slot + 1;
    if (l.count == kernels::kMultiTensorMax) flush();
  }
  flush();
}

}  // namespace

void multi_adam_step(const std::vector<Tensor>& p, const std::vector<Tensor>& g, const std::vector<Tensor>& m,
                     const std::vector<Tensor>& v, const std::vector<double>& bias_correction2_sqrt,
                     const std::vector<double>& step_size, const std::vector<Tensor>& steps, const Tensor& skip,
                     double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled) {
  if (p.empty()) return;
  const char* what = "Adam (multi-tensor)";
  const auto [device, dtype] = list_kind(what, p);
  const size_t n = p.size();
  check_list(what, p, n, device, dtype, false, "parameter");
  check_list(what, g, n, device, dtype, false, "gradient");
  check_list(what, m, n, device, dtype, false, "exp_avg");
  check_list(what, v, n, device, dtype, false, "exp_avg_sq");
  const bool* skip_ptr = skip_flag_ptr(what, skip, device);
  const bool guarded = skip_ptr != nullptr;
  if (guarded) {
    EMBER_CHECK(steps.size() == n, ValueError, what, ": expected ", n, " step counts, got ", steps.size());
    for (size_t i = 0; i < n; ++i)
      EMBER_CHECK(steps[i].defined() && steps[i].device() == device && steps[i].dtype() == kFloat64 &&
                      steps[i].numel() == 1,
                  ValueError, what, ": a guarded step needs 0-d float64 step counts on ", device.str(),
                  "; step count ", i, " is not one");
  } else {
    EMBER_CHECK(bias_correction2_sqrt.size() == n && step_size.size() == n, ValueError, what, ": expected ", n,
                " bias corrections and step sizes, got ", bias_correction2_sqrt.size(), " and ", step_size.size());
  }
  const int dev = device.index;
  DeviceGuard guard(dev);
  const cudaStream_t stream = current_stream(dev);
  const kernels::AdamParams hp{lr, beta1, beta2, eps, weight_decay, 0.0, 0.0, decoupled};
  for_each_list(
      p,
      [&](kernels::MultiTensorList& l, int s, size_t i) {
        l.ptr[0][s] = p[i].data_ptr();
        l.ptr[1][s] = g[i].data_ptr();
        l.ptr[2][s] = m[i].data_ptr();
        l.ptr[3][s] = v[i].data_ptr();
        if (guarded) {
          l.step[s] = static_cast<double*>(steps[i].data_ptr());
        } else {
          l.scalar[0][s] = bias_correction2_sqrt[i];
          l.scalar[1][s] = step_size[i];
        }
      },
      [&](const kernels::MultiTensorList& l) {
        return kernels::multi_adam_step(dtype == kFloat64, l, skip_ptr, hp, stream);
      });
}

Tensor sgd_started_flags(const Tensor& p) {
  EMBER_CHECK(p.defined() && p.is_cuda(), DeviceError, "SGD: started flags belong to a CUDA parameter, got one on ",
              p.defined() ? p.device().str() : std::string("no device"));
  return zeros({kernels::multi_tensor_chunks(p.numel())}, {.dtype = kBool, .device = p.device()});
}

void multi_sgd_step(const std::vector<Tensor>& p, const std::vector<Tensor>& g, const std::vector<Tensor>& bufs,
                    const std::vector<bool>& first, double lr, double momentum, double dampening, double weight_decay,
                    bool nesterov, const Tensor& skip, const std::vector<Tensor>& started) {
  if (p.empty()) return;
  const char* what = "SGD (multi-tensor)";
  const auto [device, dtype] = list_kind(what, p);
  const size_t n = p.size();
  check_list(what, p, n, device, dtype, false, "parameter");
  check_list(what, g, n, device, dtype, false, "gradient");
  check_list(what, bufs, n, device, dtype, true, "momentum buffer");
  EMBER_CHECK(first.size() == n, ValueError, what, ": expected ", n, " first-step flags, got ", first.size());
  if (!started.empty()) {
    check_list(what, started, n, device, kBool, true, "started-flag");
    for (size_t i = 0; i < n; ++i)
      EMBER_CHECK(!started[i].defined() || started[i].numel() == kernels::multi_tensor_chunks(p[i].numel()),
                  ValueError, what, ": started flags ", i, " have ", started[i].numel(), " elements, expected ",
                  kernels::multi_tensor_chunks(p[i].numel()), " (sgd_started_flags)");
  }
  const bool* skip_ptr = skip_flag_ptr(what, skip, device);
  const int dev = device.index;
  DeviceGuard guard(dev);
  const cudaStream_t stream = current_stream(dev);
  const kernels::SgdParams hp{lr, momentum, dampening, weight_decay, nesterov, false};
  for_each_list(
      p,
      [&](kernels::MultiTensorList& l, int s, size_t i) {
        l.ptr[0][s] = p[i].data_ptr();
        l.ptr[1][s] = g[i].data_ptr();
        l.ptr[2][s] = ptr_or_null(bufs[i]);
        l.ptr[3][s] = !started.empty() && started[i].defined() ? started[i].data_ptr() : nullptr;
        l.flag[s] = first[i];
      },
      [&](const kernels::MultiTensorList& l) {
        return kernels::multi_sgd_step(dtype == kFloat64, l, skip_ptr, hp, stream);
      });
}

Tensor multi_grad_norm(const std::vector<Tensor>& grads, bool inf_norm, double max_norm, Tensor& coef) {
  const char* what = "clip_grad_norm_ (multi-tensor)";
  const auto [device, dtype] = list_kind(what, grads);
  check_list(what, grads, grads.size(), device, dtype, false, "gradient");
  const int dev = device.index;
  DeviceGuard guard(dev);
  const cudaStream_t stream = current_stream(dev);
  int64_t chunks = 0;
  for (const Tensor& g : grads) chunks += kernels::multi_tensor_chunks(g.numel());
  // One double per chunk (at least one, zero-filled, so that all-empty gradients give 0).
  const TensorOptions popts{.dtype = kFloat64, .device = device};
  Tensor partials = chunks > 0 ? empty({chunks}, popts) : zeros({1}, popts);
  auto* pp = static_cast<double*>(partials.data_ptr());
  int64_t offset = 0;
  for_each_list(
      grads, [&](kernels::MultiTensorList& l, int s, size_t i) { l.ptr[0][s] = grads[i].data_ptr(); },
      [&](const kernels::MultiTensorList& l) {
        const cudaError_t e = kernels::multi_norm_partials(dtype == kFloat64, l, inf_norm, pp, offset, stream);
        offset += l.chunk_start[l.count];
        return e;
      });
  Tensor total = empty({}, {.dtype = dtype, .device = device});
  coef = empty({}, {.dtype = dtype, .device = device});
  EMBER_CUDA_CHECK(kernels::clip_finalize(dtype == kFloat64, pp, partials.numel(), inf_norm, max_norm,
                                          total.data_ptr(), coef.data_ptr(), stream));
  return total;
}

void multi_scale_(const std::vector<Tensor>& grads, const Tensor& coef) {
  if (grads.empty()) return;
  const char* what = "clip_grad_norm_ (multi-tensor)";
  const auto [device, dtype] = list_kind(what, grads);
  check_list(what, grads, grads.size(), device, dtype, false, "gradient");
  EMBER_CHECK(coef.defined() && coef.device() == device && coef.dtype() == dtype && coef.numel() == 1, ValueError,
              what, ": the coefficient must be one ", dtype_name(dtype), " element on ", device.str());
  const int dev = device.index;
  DeviceGuard guard(dev);
  const cudaStream_t stream = current_stream(dev);
  for_each_list(
      grads, [&](kernels::MultiTensorList& l, int s, size_t i) { l.ptr[0][s] = grads[i].data_ptr(); },
      [&](const kernels::MultiTensorList& l) {
        return kernels::multi_scale(dtype == kFloat64, l, coef.data_ptr(), stream);
      });
}

}  // namespace ember::cuda_backend
