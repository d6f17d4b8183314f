// softmax / log_softmax along one dim: validation, layout and autograd. The backward runs the
// fused kernel (one pass for the row dot product, one to write) instead of four separate ops.
#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/ops/reduction.hpp"
#include "reduce_plan.hpp"

namespace ember {

namespace {

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  detail::check_cpu(x, op);
  EMBER_CHECK(is_floating(x.dtype()), DTypeError, op, "(): expected a floating-point tensor, got ",
              dtype_name(x.dtype()), " (convert with .to(kFloat32) first)");
  const int64_t d = wrap_dim(dim, x.dim(), op);
  Tensor out;
  cpu::ReduceGeom geom;
  {
    NoGradGuard ng;
    Tensor xc = x.contiguous();
    geom = x.dim() == 0 ? cpu::ReduceGeom{1, 1, 1} : detail::dim_geom(xc, d);
    out = empty(x.shape(), {.dtype = x.dtype()});
    cpu::softmax(out, xc, geom, log);
  }
  return autograd::record(
      log ? "LogSoftmaxBackward" : "SoftmaxBackward", {x}, out,
      [sy = autograd::SavedTensor(out), geom, log](const std::vector<Tensor>& g, const std::vector<bool>&) {
        Tensor y = sy.get();
        Tensor gy = g[0].to(y.dtype()).contiguous();
        Tensor gx = empty(y.shape(), {.dtype = y.dtype()});
        cpu::softmax_backward(gx, gy, y, geom, log);
        return std::vector<Tensor>{gx};
      });
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace ember
