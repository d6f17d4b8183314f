// softmax / log_softmax along one dim: validation, layout and autograd. The backward runs the
// fused kernel (one pass for the row dot product, one to write) instead of four separate ops.
#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/ops/reduction.hpp"
#include "reduce_plan.hpp"

namespace ember {

namespace {

/// f32 along a dim that is not the innermost: the vectorised row kernel on a transposed copy
/// beats the column kernel by ~5x even after paying for the two transposing copies.
bool use_transposed_rows(const Tensor& x, const cpu::ReduceGeom& g) {
  return g.inner > 1 && x.dtype() == kFloat32 && x.is_cpu();
}

/// Contiguous copy of t with dims d and -1 swapped (its own inverse).
Tensor to_rows(const Tensor& t, int64_t d) { return t.transpose(d, -1).contiguous(); }

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  EMBER_CHECK(x.defined(), ValueError, op, ": got an undefined tensor");
  EMBER_CHECK(is_floating(x.dtype()), DTypeError, op, "(): expected a floating-point tensor, got ",
              dtype_name(x.dtype()), " (convert with .to(kFloat32) first)");
  const int64_t d = wrap_dim(dim, x.dim(), op);
  Tensor out;
  cpu::ReduceGeom geom;
  bool transposed = false;
  {
    NoGradGuard ng;
    Tensor xc = x.contiguous();
    geom = x.dim() == 0 ? cpu::ReduceGeom{1, 1, 1} : detail::dim_geom(xc, d);
    transposed = use_transposed_rows(x, geom);
    if (transposed) {
      Tensor xt = to_rows(xc, d);
      Tensor yt = empty(xt.shape(), {.dtype = x.dtype()});
      cpu::softmax(yt, xt, {geom.outer * geom.inner, geom.size, 1}, log);
      out = to_rows(yt, d);  // swapping the same two dims back restores x's layout
    } else {
      out = empty(x.shape(), {.dtype = x.dtype(), .device = x.device()});
      if (x.is_cuda()) cuda_backend::softmax(out, xc, geom, log);
      else cpu::softmax(out, xc, geom, log);
    }
  }
  return autograd::record(log ? "LogSoftmaxBackward" : "SoftmaxBackward", {x}, out,
                          [sy = autograd::SavedTensor(out), geom, log, transposed, d](const std::vector<Tensor>& g,
                                                                                      const std::vector<bool>&) {
                            Tensor y = sy.get();
                            Tensor gy = g[0].to(y.dtype()).contiguous();
                            if (transposed) {
                              Tensor yt = to_rows(y, d), gyt = to_rows(gy, d);
                              Tensor gxt = empty(yt.shape(), {.dtype = y.dtype()});
                              cpu::softmax_backward(gxt, gyt, yt, {geom.outer * geom.inner, geom.size, 1}, log);
                              return std::vector<Tensor>{to_rows(gxt, d)};
                            }
                            Tensor gx = empty(y.shape(), {.dtype = y.dtype(), .device = y.device()});
                            if (y.is_cuda()) cuda_backend::softmax_backward(gx, gy, y, geom, log);
                            else cpu::softmax_backward(gx, gy, y, geom, log);
                            return std::vector<Tensor>{gx};
                          });
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace ember
