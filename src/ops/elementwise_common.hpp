// Private to src/ops/elementwise*.cpp: validation and dtype helpers shared by the elementwise
// op files.
#pragma once

#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/ops/elementwise.hpp"

namespace ember::elementwise_detail {

/// Every elementwise op starts here: a defined tensor on the CPU (the CUDA backend has no
/// elementwise kernels yet).
inline void check_operand(const Tensor& t, const char* op) {
  EMBER_CHECK(t.defined(), ValueError, op, ": an input is an undefined tensor");
  if (!t.is_cpu())
    EMBER_THROW(NotImplemented, op, ": CUDA tensors are not supported yet (got a tensor on ", t.device().str(), ")");
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
