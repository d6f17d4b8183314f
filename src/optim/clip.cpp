// Gradient clipping with PyTorch's formulas, built from tensor ops so that nothing is read on
// the host (a CUDA run would not synchronise); f32/f64 CUDA gradients with the 2- or
// inf-norm take three multi-tensor launches instead (cuda_backend::multi_grad_norm).
#include "ember/optim/clip.hpp"

#include <cmath>
#include <limits>

#include "ember/backend/cuda.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/ops/ops.hpp"

namespace ember::optim {

namespace {
// error_if_nonfinite: the total is read on the host (a device synchronisation on CUDA).
void check_finite_total(const Tensor& total, double norm_type) {
  const double v = total.item<double>();
  EMBER_CHECK(std::isfinite(v), ValueError, "clip_grad_norm_: the total norm of order ", norm_type,
              " of the gradients is ", v,
              ", so they cannot be clipped; pass error_if_nonfinite = false to clip anyway");
}
}  // namespace

Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  EMBER_CHECK(norm_type > 0, ValueError, "clip_grad_norm_: norm_type must be positive, got ", norm_type);
  NoGradGuard ng;
  std::vector<Tensor> grads;
  for (const Tensor& p : params) {
    EMBER_CHECK(p.defined(), ValueError, "clip_grad_norm_: parameter ", grads.size(), " is undefined");
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return zeros({});
  const Device device = grads.front().device();
  DType dt = grads.front().dtype();
  for (const Tensor& g : grads) {
    EMBER_CHECK(g.device() == device, DeviceError, "clip_grad_norm_: gradients on ", device.str(), " and ",
                g.device().str());
    dt = promote_types(dt, g.dtype());
  }
  const bool inf_norm = std::isinf(norm_type);
  if (grads.front().is_cuda() && (inf_norm || norm_type == 2.0) && (dt == kFloat32 || dt == kFloat64)) {
    // CUDA fast path: one multi-tensor reduction into per-chunk partials, one kernel reducing
    // them (fixed order) into the total and the clip coefficient on the device, one
    // multi-tensor kernel scaling the gradients by it. Nothing is read on the host except with
    // error_if_nonfinite (that check must see the total, so it waits for the device).
    bool fast = true;
    std::vector<Tensor> gd;
    for (const Tensor& g : grads) {
      fast = fast && g.dtype() == dt && g.is_contiguous();
      gd.push_back(g.detach());
    }
    if (fast) {
      Tensor coef;
      Tensor total = cuda_backend::multi_grad_norm(gd, inf_norm, max_norm, coef);
      if (error_if_nonfinite) check_finite_total(total, norm_type);
      cuda_backend::multi_scale_(gd, coef);
      for (Tensor& g : gd) g.storage()->bump_version();
      return total;
    }
  }
  std::vector<Tensor> norms;
  for (const Tensor& g : grads) {
    Tensor n = inf_norm ? g.detach().abs().max() : norm(g.detach(), norm_type);
    norms.push_back(n.to(dt));
  }
  Tensor total;
  if (norms.size() == 1) {
    total = norms.front();
  } else {
    Tensor stacked = stack(norms);
    total = inf_norm ? stacked.max() : norm(stacked, norm_type);
  }
  if (error_if_nonfinite) check_finite_total(total, norm_type);
  Tensor coef = full({}, max_norm, {.dtype = dt, .device = device}).div(total + 1e-6);
  Tensor clamped = coef.clamp(std::nullopt, 1.0);
  for (Tensor& g : grads) {
    Tensor gd = g.detach();
    gd.mul_(clamped.to(g.dtype()));
  }
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  EMBER_CHECK(clip_value >= 0, ValueError, "clip_grad_value_: clip_value must be non-negative, got ", clip_value);
  NoGradGuard ng;
  for (const Tensor& p : params) {
    EMBER_CHECK(p.defined(), ValueError, "clip_grad_value_: a parameter is undefined");
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor gd = g.detach();
    clamp_(gd, -clip_value, clip_value);
  }
}

}  // namespace ember::optim
