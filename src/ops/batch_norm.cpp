// batch_norm: training (batch statistics, running-stat update in place) and evaluation
// (running statistics), with one autograd node each. The per-channel arithmetic happens in
// double on C values; the passes over the data are the kernels in src/cpu/batch_norm.cpp.
// CUDA tensors take the same structure on the device (kernels/batch_norm.cu): the per-channel
// values stay there in f32 (f64 for f64 data) so nothing waits for the GPU.
#include <algorithm>
#include <cmath>
#include <memory>

#include "../cpu/conv.hpp"
#include "ember/amp/autocast.hpp"
#include "ember/autograd/node.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/ops/conv.hpp"

namespace ember {

namespace {

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;
using Vec = std::vector<double>;

void check_channel_tensor(const char* what, const Tensor& t, int64_t c, DType dt, bool same_dtype, Device dev) {
  if (!t.defined()) return;
  EMBER_CHECK(t.device() == dev, DeviceError, "batch_norm: expected ", what, " on ", dev.str(),
              " like the input, got a tensor on ", t.device().str());
  EMBER_CHECK(t.dim() == 1 && t.size(0) == c, ShapeError, "batch_norm: expected ", what, " of shape (", c,
              ") for an input with ", c, " channels, got ", shape_str(t.shape()));
  EMBER_CHECK(is_floating(t.dtype()), DTypeError, "batch_norm: ", what, " must be floating, got ",
              dtype_name(t.dtype()));
  if (same_dtype)
    EMBER_CHECK(t.dtype() == dt, DTypeError, "batch_norm: ", what, " has dtype ", dtype_name(t.dtype()),
                " but the input has ", dtype_name(dt));
}

Vec values_or(const Tensor& t, int64_t c, double fallback) {
  return t.defined() ? t.to_vector<double>() : Vec(static_cast<size_t>(c), fallback);
}

Tensor channel_tensor(const Vec& v, DType dt) { return tensor(v, {static_cast<int64_t>(v.size())}).to(dt); }

// The CUDA path (arguments validated by batch_norm): the same formulas as the CPU path, with
// the per-channel mean, invstd and gradient sums as device tensors in the accumulation dtype.
Tensor batch_norm_cuda(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum, double eps, const cpu::ChannelGeom& cg) {
  const DType dt = input.dtype();
  const DType acc = dt == kFloat64 ? kFloat64 : kFloat32;
  const Device dev = input.device();
  const TensorOptions ao{.dtype = acc, .device = dev};
  const cuda_backend::ChannelGeom g{cg.n, cg.c, cg.s};
  const int64_t count = g.n * g.s;
  Tensor x, out, mean, invstd, w;
  {
    NoGradGuard ng;
    x = input.contiguous();
    invstd = empty({g.c}, ao);
    if (training) {
      mean = empty({g.c}, ao);
      Tensor var = empty({g.c}, ao);
      cuda_backend::batch_norm_moments(x, g, eps, mean, var, invstd);  // count > 1 (checked)
      if (running_mean.defined()) {
        const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
        Tensor rm = running_mean, rv = running_var;  // handles alias the caller's buffers
        rm.mul_(1.0 - momentum).add_(mean.to(rm.dtype()), momentum);
        rv.mul_(1.0 - momentum).add_((var * unbias).to(rv.dtype()), momentum);
      }
    } else {
      // Copies: the backward must see the statistics of this forward, as the CPU path does.
      mean = running_mean.to(acc).contiguous().clone();
      const Tensor var = running_var.to(acc).contiguous();
      if (g.c > 0) cuda_backend::batch_norm_invstd(var, eps, invstd);
    }
    // The weight's values at forward time, as the CPU path keeps them.
    if (weight.defined()) w = weight.detach().contiguous().clone();
    const Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
    out = empty(input.shape(), {.dtype = dt, .device = dev});
    if (out.numel() > 0) cuda_backend::batch_norm_apply(out, x, g, mean, invstd, w, b);
  }
  if (!autograd::needs_grad({input, weight, bias})) return out;

  autograd::SavedTensor sx(x);
  return autograd::record(training ? "NativeBatchNormBackward" : "BatchNormEvalBackward", {input, weight, bias}, out,
                          [sx, mean, invstd, w, g, training, dt, ao](const Grads& grads, const Needs& needs) {
                            Grads r(3);
                            const Tensor gy = grads[0].contiguous();
                            const Tensor xs = sx.get();
                            Tensor sum_gy, sum_gy_xmu;
                            if (needs[1] || needs[2] || (training && needs[0])) {
                              sum_gy = zeros({g.c}, ao);
                              sum_gy_xmu = zeros({g.c}, ao);
                              if (g.n * g.s > 0)
                                cuda_backend::batch_norm_grad_sums(gy, xs, g, mean, sum_gy, sum_gy_xmu);
                            }
                            if (needs[0]) {
                              r[0] = empty(xs.shape(), {.dtype = dt, .device = xs.device()});
                              if (r[0].numel() > 0)
                                cuda_backend::batch_norm_backward_input(r[0], gy, xs, g, mean, invstd, w, sum_gy,
                                                                        sum_gy_xmu, training);
                            }
                            if (needs[1]) r[1] = (sum_gy_xmu * invstd).to(dt);
                            if (needs[2]) r[2] = sum_gy.to(dt);
                            return r;
                          });
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  EMBER_CHECK(input.defined(), ValueError, "batch_norm: expected a defined input");
  if (amp::is_autocast_enabled(input.device().type) && input.dtype() != kFloat32) {
    // Autocast (include/ember/amp/autocast.hpp): normalisation runs in f32 (16-bit input upcast).
    const Tensor x = amp::autocast_f32(input);
    if (x.dtype() != input.dtype()) return batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps);
  }
  EMBER_CHECK(input.is_cpu() || input.is_cuda(), NotImplemented,
              "batch_norm: expected a CPU or CUDA tensor, got one on ", input.device().str());
  EMBER_CHECK(is_floating(input.dtype()), DTypeError, "batch_norm: expected a floating input, got ",
              dtype_name(input.dtype()));
  EMBER_CHECK(input.dim() >= 2, ShapeError, "batch_norm: expected an input of at least 2 dims (N, C, ...), got shape ",
              shape_str(input.shape()));
  EMBER_CHECK(eps >= 0, ValueError, "batch_norm: eps must be non-negative, got ", eps);
  const int64_t c = input.size(1);
  const DType dt = input.dtype();
  const Device dev = input.device();
  check_channel_tensor("weight", weight, c, dt, true, dev);
  check_channel_tensor("bias", bias, c, dt, true, dev);
  check_channel_tensor("running_mean", running_mean, c, dt, false, dev);
  check_channel_tensor("running_var", running_var, c, dt, false, dev);
  EMBER_CHECK(training || (running_mean.defined() && running_var.defined()), ValueError,
              "batch_norm: running_mean and running_var must be defined in evaluation mode (training=false)");
  EMBER_CHECK(running_mean.defined() == running_var.defined(), ValueError,
              "batch_norm: running_mean and running_var must be both defined or both undefined");

  const cpu::ChannelGeom g{input.size(0), c, c == 0 ? 0 : input.numel() / std::max<int64_t>(1, input.size(0) * c)};
  const int64_t count = g.n * g.s;
  if (training)
    EMBER_CHECK(count > 1, ValueError,
                "batch_norm: expected more than 1 value per channel when training, got input of shape ",
                shape_str(input.shape()));
  if (input.is_cuda())
    return batch_norm_cuda(input, running_mean, running_var, weight, bias, training, momentum, eps, g);

  auto mean = std::make_shared<Vec>(static_cast<size_t>(c));
  auto invstd = std::make_shared<Vec>(static_cast<size_t>(c));
  Tensor x, out;
  Vec scale(static_cast<size_t>(c)), shift(static_cast<size_t>(c));
  const Vec w = values_or(weight, c, 1.0);
  {
    NoGradGuard ng;
    x = input.contiguous();
    Vec var(static_cast<size_t>(c));
    if (training) {
      if (count > 0) cpu::channel_moments(x, g, mean->data(), var.data());
      if (running_mean.defined()) {
        const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
        Vec uvar(var);
        for (double& v : uvar) v *= unbias;
        Tensor rm = running_mean, rv = running_var;  // handles alias the caller's buffers
        rm.mul_(1.0 - momentum).add_(channel_tensor(*mean, rm.dtype()), momentum);
        rv.mul_(1.0 - momentum).add_(channel_tensor(uvar, rv.dtype()), momentum);
      }
    } else {
      *mean = running_mean.to_vector<double>();
      var = running_var.to_vector<double>();
    }
    const Vec b = values_or(bias, c, 0.0);
    for (int64_t i = 0; i < c; ++i) {
      (*invstd)[i] = 1.0 / std::sqrt(var[i] + eps);
      scale[i] = (*invstd)[i] * w[i];
      shift[i] = b[i] - (*mean)[i] * scale[i];
    }
    out = empty(input.shape(), {.dtype = dt});
    if (out.numel() > 0) cpu::channel_affine(out, x, g, scale.data(), shift.data());
  }
  if (!autograd::needs_grad({input, weight, bias})) return out;

  autograd::SavedTensor sx(x);
  return autograd::record(training ? "NativeBatchNormBackward" : "BatchNormEvalBackward", {input, weight, bias}, out,
                          [sx, mean, invstd, w, g, training, dt](const Grads& grads, const Needs& needs) {
                            Grads r(3);
                            const Tensor gy = grads[0].contiguous();
                            const Tensor xs = sx.get();
                            const size_t nc = static_cast<size_t>(g.c);
                            Vec sum_gy(nc, 0.0), sum_gy_xmu(nc, 0.0);
                            const bool need_sums = needs[1] || needs[2] || (training && needs[0]);
                            if (need_sums && g.n * g.s > 0)
                              cpu::channel_grad_sums(gy, xs, g, mean->data(), sum_gy.data(), sum_gy_xmu.data());
                            if (needs[0]) {
                              r[0] = empty(xs.shape(), {.dtype = dt});
                              Vec a(nc), d(nc, 0.0), b(nc, 0.0);
                              const double count = static_cast<double>(g.n * g.s);
                              for (size_t i = 0; i < nc; ++i) {
                                const double is = (*invstd)[i];
                                a[i] = w[i] * is;
                                if (training) {
                                  // gx = w·invstd·(gy − mean(gy) − (x − μ)·invstd²·mean(gy·(x − μ)))
                                  const double k = w[i] * is * is * is * sum_gy_xmu[i] / count;
                                  b[i] = -k;
                                  d[i] = -w[i] * is * sum_gy[i] / count + k * (*mean)[i];
                                }
                              }
                              if (r[0].numel() > 0) {
                                if (training)
                                  cpu::channel_affine(r[0], gy, g, a.data(), d.data(), xs, b.data());
                                else
                                  cpu::channel_affine(r[0], gy, g, a.data(), d.data());
                              }
                            }
                            if (needs[1]) {
                              Vec gw(nc);
                              for (size_t i = 0; i < nc; ++i) gw[i] = sum_gy_xmu[i] * (*invstd)[i];
                              r[1] = channel_tensor(gw, dt);
                            }
                            if (needs[2]) r[2] = channel_tensor(sum_gy, dt);
                            return r;
                          });
}

}  // namespace ember
