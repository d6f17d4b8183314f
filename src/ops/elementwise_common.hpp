// Private to src/ops/elementwise*.cpp: validation and dtype helpers shared by the elementwise
// op files.
#pragma once

#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/ops/elementwise.hpp"

namespace ember::elementwise_detail {

/// Every elementwise op starts here: a defined tensor (CPU or CUDA; ops without CUDA kernels
/// add check_cpu_only).
inline void check_operand(const Tensor& t, const char* op) {
  EMBER_CHECK(t.defined(), ValueError, op, ": an input is an undefined tensor");
}

/// For the ops that have no CUDA kernel yet (where, clamp, logical ops, isnan & co, equal).
inline void check_cpu_only(const Tensor& t, const char* op) {
  if (!t.is_cpu())
    EMBER_THROW(NotImplemented, op, ": CUDA tensors are not supported yet (got a tensor on ", t.device().str(), ")");
}

/// The device of a result: the first CUDA operand's (a one-element CPU tensor beside it acts
/// as a wrapped scalar), else the CPU.
inline Device result_device(const Tensor& a, const Tensor& b) { return a.is_cuda() ? a.device() : b.device(); }

/// out = op(a, b) on out's device. A CPU output with a CUDA input is a device error (the CPU
/// kernel must never see device memory).
inline void run_binary(cpu::BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, const Scalar& alpha = 1) {
  if (out.is_cuda()) {
    cuda_backend::binary(op, out, a, b, alpha);
    return;
  }
  EMBER_CHECK(a.is_cpu() && b.is_cpu(), DeviceError, "elementwise op: expected all tensors on cpu, got ",
              a.device().str(), " and ", b.device().str());
  cpu::binary(op, out, a, b, alpha);
}

/// out = op(x) on out's device.
inline void run_unary(cpu::UnaryOp op, const Tensor& out, const Tensor& x) {
  if (out.is_cuda()) {
    cuda_backend::unary(op, out, x);
    return;
  }
  EMBER_CHECK(x.is_cpu(), DeviceError, "elementwise op: expected all tensors on cpu, got ", x.device().str());
  cpu::unary(op, out, x);
}

/// dst = src on dst's device.
inline void run_copy(const Tensor& dst, const Tensor& src) {
  if (dst.is_cuda()) cuda_backend::copy(dst, src);
  else cpu::copy(dst, src);
}

/// t converted to dtype d without recording autograd (ops record their own backward).
inline Tensor cast(const Tensor& t, DType d) {
  if (t.dtype() == d) return t;
  NoGradGuard ng;
  return t.to(d);
}

/// The gradient of a broadcast input: summed back to its shape and converted to its dtype.
inline Tensor reduce_grad(const Tensor& g, const Shape& shape, DType dtype) {
  Tensor r = autograd::sum_to(g, shape);
  if (r.dtype() != dtype && is_floating(dtype)) r = r.to(dtype);
  return r;
}

/// 0 for bool, 1 for integers, 2 for floats (torch's type categories).
inline int category(DType d) { return d == DType::boolean ? 0 : is_floating(d) ? 2 : 1; }

/// Whether a result of dtype `from` may be written into a tensor of dtype `to` (in-place ops):
/// never into a lower category (float into int, int into bool), as torch.can_cast.
inline bool can_cast(DType from, DType to) { return category(from) <= category(to); }

/// The dtype of float results of an op on dtype d (exp, log, true division ...).
inline DType float_result(DType d) { return is_floating(d) ? d : kDefaultFloat; }

}  // namespace ember::elementwise_detail
