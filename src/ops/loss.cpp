// Fused cross entropy: validation, reduction and autograd around the CPU kernels.
#include "ember/ops/loss.hpp"

#include <cmath>
#include <limits>

#include "../cpu/cross_entropy.hpp"
#include "ember/amp/autocast.hpp"
#include "ember/autograd/node.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/core/dispatch.hpp"

namespace ember {

namespace {

/// cross_entropy on a CUDA device: the fused kernel gives the per-row terms, ordinary ops on
/// the device reduce them (no host synchronisation: a target out of range gives NaN instead of
/// the CPU's IndexError, since checking it would wait for the device).
Tensor cross_entropy_cuda(const Tensor& logits, const Tensor& target_in, const Tensor& weight_in,
                          int64_t ignore_index, double eps, LossReduction reduction) {
  const int64_t m = logits.size(0), c = logits.size(1);
  const DType out_dtype = logits.dtype();
  const DType ct = out_dtype == kFloat64 ? kFloat64 : kFloat32;
  const TensorOptions o{.dtype = ct, .device = logits.device()};
  Tensor x, target, weight, lse, out, denom;
  {
    NoGradGuard ng;
    x = logits.detach().to(ct).contiguous();
    target = target_in.to(kInt64).contiguous();
    if (weight_in.defined()) {
      EMBER_CHECK(weight_in.dim() == 1 && weight_in.size(0) == c, ShapeError,
                  "cross_entropy: weight must have shape (", c, ",), got ", shape_str(weight_in.shape()));
      EMBER_CHECK(weight_in.device() == logits.device(), DeviceError, "cross_entropy: logits on ",
                  logits.device().str(), " but weight on ", weight_in.device().str());
      weight = weight_in.detach().to(ct).contiguous();
    }
    lse = empty({m}, o);
    Tensor nll = empty({m}, o), smooth = empty({m}, o), wt = empty({m}, o);
    cuda_backend::cross_entropy_forward(x, target, weight, ignore_index, lse, nll, smooth, wt);
    const Tensor rows = nll * (1.0 - eps) + smooth * (eps / static_cast<double>(c));
    if (reduction == LossReduction::none) {
      out = rows;
    } else if (reduction == LossReduction::sum) {
      out = rows.sum();
    } else {
      denom = wt.sum();  // 0 when every row is ignored: 0 / 0 = NaN, as on the CPU
      out = rows.sum() / denom;
    }
    if (out_dtype != ct) out = out.to(out_dtype);
  }
  return autograd::record(
      "CrossEntropyBackward", {logits}, out,
      [sx = autograd::SavedTensor(x), target, weight, lse, denom, ignore_index, eps, reduction, m, ct, out_dtype](
          const std::vector<Tensor>& g, const std::vector<bool>&) {
        Tensor gs = g[0].to(ct);
        Tensor scale;
        if (reduction == LossReduction::none) scale = gs.contiguous();
        else if (reduction == LossReduction::sum) scale = gs.reshape({1}).expand({m}).contiguous();
        else scale = (gs / denom).reshape({1}).expand({m}).contiguous();
        Tensor x = sx.get();
        Tensor grad = empty(x.shape(), {.dtype = ct, .device = x.device()});
        cuda_backend::cross_entropy_backward(x, target, weight, ignore_index, eps, lse, scale, grad);
        return std::vector<Tensor>{out_dtype == ct ? grad : grad.to(out_dtype)};
      });
}

}  // namespace

Tensor cross_entropy_2d(const Tensor& logits, const Tensor& target_in, const Tensor& weight_in, int64_t ignore_index,
                        double eps, LossReduction reduction) {
  if (logits.defined() && amp::is_autocast_enabled(logits.device().type)) {
    // Autocast (include/ember/amp/autocast.hpp): the loss runs in f32 (a 16-bit input is upcast;
    // the cast's backward hands the gradient back in the input's dtype).
    const Tensor x = amp::autocast_f32(logits);
    if (x.dtype() != logits.dtype()) return cross_entropy_2d(x, target_in, weight_in, ignore_index, eps, reduction);
  }
  EMBER_CHECK(logits.dim() == 2, ShapeError, "cross_entropy: expected logits of shape (N, C), got ",
              shape_str(logits.shape()));
  EMBER_CHECK(is_floating(logits.dtype()), DTypeError, "cross_entropy: logits must be floating point, got ",
              dtype_name(logits.dtype()));
  EMBER_CHECK(target_in.dim() == 1 && target_in.size(0) == logits.size(0), ShapeError,
              "cross_entropy: expected target of shape (", logits.size(0), ",) for logits ", shape_str(logits.shape()),
              ", got ", shape_str(target_in.shape()));
  EMBER_CHECK(target_in.dtype() == kInt64 || target_in.dtype() == kInt32, DTypeError,
              "cross_entropy: target must hold class indices (int64 or int32), got ", dtype_name(target_in.dtype()));
  EMBER_CHECK(eps >= 0.0 && eps <= 1.0, ValueError, "cross_entropy: label_smoothing must be in [0, 1], got ", eps);
  EMBER_CHECK(logits.device() == target_in.device(), DeviceError, "cross_entropy: logits on ", logits.device().str(),
              " but target on ", target_in.device().str());
  const int64_t m = logits.size(0), c = logits.size(1);
  EMBER_CHECK(c > 0, ShapeError, "cross_entropy: logits have 0 classes");
  if (logits.is_cuda()) return cross_entropy_cuda(logits, target_in, weight_in, ignore_index, eps, reduction);

  const DType out_dtype = logits.dtype();
  const DType ct = out_dtype == kFloat64 ? kFloat64 : kFloat32;  // 16-bit floats compute in f32
  Tensor x, target, weight;
  {
    NoGradGuard ng;
    x = logits.detach().to(ct).contiguous();
    target = target_in.to(kInt64).contiguous();
    if (weight_in.defined()) {
      EMBER_CHECK(weight_in.dim() == 1 && weight_in.size(0) == c, ShapeError,
                  "cross_entropy: weight must have shape (", c, ",), got ", shape_str(weight_in.shape()));
      weight = weight_in.detach().to(ct).contiguous();
    }
  }
  const int64_t* tp = target.data<int64_t>();
  for (int64_t i = 0; i < m; ++i) {
    EMBER_CHECK(tp[i] == ignore_index || (tp[i] >= 0 && tp[i] < c), IndexError, "cross_entropy: target ", tp[i],
                " at position ", i, " is out of bounds for ", c, " classes");
  }

  const TensorOptions o{.dtype = ct};
  Tensor lse = empty({m}, o), nll = empty({m}, o), smooth = empty({m}, o), wt = empty({m}, o);
  cpu::cross_entropy_forward(x, target, weight, ignore_index, lse, nll, smooth, wt);

  const double a = 1.0 - eps, b = eps / static_cast<double>(c);
  Tensor out;
  double denom = 0;
  dispatch<kSetF32 | kSetF64>(ct, "cross_entropy", [&]<class T>() {
    const T* n = nll.data<T>();
    const T* s = smooth.data<T>();
    const T* w = wt.data<T>();
    if (reduction == LossReduction::none) {
      out = empty({m}, o);
      T* p = out.data<T>();
      for (int64_t i = 0; i < m; ++i) p[i] = static_cast<T>(a * n[i] + b * s[i]);
      return;
    }
    double sn = 0, ss = 0;
    for (int64_t i = 0; i < m; ++i) {
      sn += n[i];
      ss += s[i];
      if (tp[i] != ignore_index) denom += weight.defined() ? static_cast<double>(w[i]) : 1.0;
    }
    double v = a * sn + b * ss;
    if (reduction == LossReduction::mean) v = denom == 0 ? std::numeric_limits<double>::quiet_NaN() : v / denom;
    out = full({}, v, o);
  });
  if (out_dtype != ct) {
    NoGradGuard ng;
    out = out.to(out_dtype);
  }

  return autograd::record(
      "CrossEntropyBackward", {logits}, out,
      [sx = autograd::SavedTensor(x), target, weight, lse, ignore_index, eps, reduction, denom, m, ct, out_dtype](
          const std::vector<Tensor>& g, const std::vector<bool>&) {
        Tensor gs = g[0].to(Device::cpu(), ct).contiguous();
        Tensor scale = empty({m}, {.dtype = ct});
        dispatch<kSetF32 | kSetF64>(ct, "cross_entropy backward", [&]<class T>() {
          T* sp = scale.data<T>();
          const T* gp = gs.data<T>();
          for (int64_t i = 0; i < m; ++i) {
            if (reduction == LossReduction::none) sp[i] = gp[i];
            else if (reduction == LossReduction::sum) sp[i] = gp[0];
            else sp[i] = static_cast<T>(static_cast<double>(gp[0]) / denom);
          }
        });
        Tensor x = sx.get();
        Tensor grad = empty(x.shape(), {.dtype = ct});
        cpu::cross_entropy_backward(x, target, weight, ignore_index, eps, lse, scale, grad);
        return std::vector<Tensor>{out_dtype == ct ? grad : grad.to(out_dtype)};
      });
}

}  // namespace ember
