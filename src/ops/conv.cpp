// conv2d: validation at the public edge, the CPU kernels in src/cpu/conv.cpp or, for CUDA
// tensors, cuDNN through the CUDA backend (src/cuda/conv.cpp; bias added and its gradient
// summed with ordinary ops), and one autograd node whose backward computes only the gradients
// asked for (the first layer's input never needs one).
#include "ember/ops/conv.hpp"
#include "ember/amp/autocast.hpp"

#include "../cpu/conv.hpp"
#include "ember/autograd/node.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/core/grad_mode.hpp"

namespace ember {

namespace {

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

std::string pair_str(IntPair p) {
  // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "(" + std::to_string(...).
  std::string s(1, '(');
  s.append(std::to_string(p.h)).append(", ").append(std::to_string(p.w)).push_back(')');
  return s;
}

void check_conv_args(const Tensor& input, const Tensor& weight, const Tensor& bias, IntPair stride, IntPair padding,
                     IntPair dilation, int64_t groups) {
  EMBER_CHECK(input.defined() && weight.defined(), ValueError, "conv2d: expected a defined input and weight");
  EMBER_CHECK(input.is_cpu() || input.is_cuda(), NotImplemented, "conv2d: expected a CPU or CUDA input, got one on ",
              input.device().str());
  for (const Tensor* t : {&input, &weight, &bias}) {
    if (!t->defined()) continue;
    EMBER_CHECK(t->device() == input.device(), DeviceError,
                "conv2d: input, weight and bias must be on one device, got input on ", input.device().str(), " and ",
                t == &weight ? "weight" : "bias", " on ", t->device().str());
    EMBER_CHECK(is_floating(t->dtype()), DTypeError, "conv2d: expected floating tensors, got ", dtype_name(t->dtype()));
    EMBER_CHECK(t->dtype() == input.dtype(), DTypeError, "conv2d: input, weight and bias must share one dtype, got ",
                dtype_name(input.dtype()), " and ", dtype_name(t->dtype()));
  }
  EMBER_CHECK(input.dim() == 3 || input.dim() == 4, ShapeError,
              "conv2d: expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got shape ", shape_str(input.shape()));
  EMBER_CHECK(weight.dim() == 4, ShapeError,
              "conv2d: expected a 4-d weight (out_channels, in_channels / groups, kH, kW), got shape ",
              shape_str(weight.shape()));
  EMBER_CHECK(stride.h > 0 && stride.w > 0, ValueError, "conv2d: stride must be positive, got ", pair_str(stride));
  EMBER_CHECK(dilation.h > 0 && dilation.w > 0, ValueError, "conv2d: dilation must be positive, got ",
              pair_str(dilation));
  EMBER_CHECK(padding.h >= 0 && padding.w >= 0, ValueError, "conv2d: padding must be non-negative, got ",
              pair_str(padding));
  EMBER_CHECK(groups > 0, ValueError, "conv2d: groups must be positive, got ", groups);
  const int64_t c = input.size(-3), o = weight.size(0);
  EMBER_CHECK(c % groups == 0, ValueError, "conv2d: groups=", groups, " must divide the input channels (", c, ")");
  EMBER_CHECK(o % groups == 0, ValueError, "conv2d: groups=", groups, " must divide the output channels (", o, ")");
  EMBER_CHECK(weight.size(1) * groups == c, ShapeError, "conv2d: expected input with ", weight.size(1) * groups,
              " channels for weight of shape ", shape_str(weight.shape()),
              groups > 1 ? " and groups=" + std::to_string(groups) : std::string(), ", got input of shape ",
              shape_str(input.shape()));
  EMBER_CHECK(weight.size(2) > 0 && weight.size(3) > 0 && o > 0, ShapeError, "conv2d: weight of shape ",
              shape_str(weight.shape()), " is empty");
  if (bias.defined())
    EMBER_CHECK(bias.dim() == 1 && bias.size(0) == o, ShapeError, "conv2d: expected bias of shape (", o, "), got ",
                shape_str(bias.shape()));
  const int64_t ekh = dilation.h * (weight.size(2) - 1) + 1, ekw = dilation.w * (weight.size(3) - 1) + 1;
  const int64_t ph = input.size(-2) + 2 * padding.h, pw = input.size(-1) + 2 * padding.w;
  EMBER_CHECK(ekh <= ph && ekw <= pw, ShapeError, "conv2d: kernel size ", pair_str({ekh, ekw}),
              " (after dilation) is larger than the padded input ", pair_str({ph, pw}), " (input of shape ",
              shape_str(input.shape()), ")");
}

Tensor conv2d_4d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntPair stride, IntPair padding,
                 IntPair dilation, int64_t groups) {
  cpu::ConvGeom g{};
  g.n = input.size(0), g.c = input.size(1), g.h = input.size(2), g.w = input.size(3);
  g.o = weight.size(0), g.kh = weight.size(2), g.kw = weight.size(3);
  g.sh = stride.h, g.sw = stride.w, g.ph = padding.h, g.pw = padding.w, g.dh = dilation.h, g.dw = dilation.w;
  g.groups = groups;
  g.oh = (g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;

  const Device dev = input.device();
  const cuda_backend::ConvGeom cg{g.n,  g.c,  g.h,  g.w,  g.o,  g.kh, g.kw, g.oh,
                                  g.ow, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups};
  Tensor x, w, b, out;
  {
    NoGradGuard ng;
    x = input.contiguous();
    w = weight.contiguous();
    if (bias.defined()) b = bias.contiguous();
    out = empty({g.n, g.o, g.oh, g.ow}, {.dtype = input.dtype(), .device = dev});
    if (dev.is_cuda()) {
      if (g.n > 0) {
        cuda_backend::conv2d_forward(out, x, w, cg);
        if (b.defined()) out.add_(b.view({1, g.o, 1, 1}));
      }
    } else if (g.n > 0) {
      cpu::conv2d_forward(out, x, w, b, g);
    }
  }
  if (!autograd::needs_grad({input, weight, bias})) return out;
  // x is needed for the weight gradient (and on the CPU for the bias gradient, computed with it).
  const bool want_w = weight.requires_grad() || (bias.requires_grad() && dev.is_cpu());
  autograd::SavedTensor sx = want_w ? autograd::SavedTensor(x) : autograd::SavedTensor();
  autograd::SavedTensor sw = input.requires_grad() ? autograd::SavedTensor(w) : autograd::SavedTensor();
  const DType dt = input.dtype();
  return autograd::record("ConvolutionBackward", {input, weight, bias}, out,
                          [sx, sw, g, cg, dt, dev](const Grads& grads, const Needs& needs) {
                            Grads r(3);
                            const Tensor gy = grads[0].contiguous();
                            if (dev.is_cuda()) {
                              NoGradGuard ng;
                              if (needs[0]) {
                                r[0] = empty({g.n, g.c, g.h, g.w}, {.dtype = dt, .device = dev});
                                if (g.n > 0) cuda_backend::conv2d_backward_input(r[0], gy, sw.get(), cg);
                              }
                              if (needs[1]) {
                                r[1] = empty({g.o, g.c / g.groups, g.kh, g.kw}, {.dtype = dt, .device = dev});
                                if (g.n > 0)
                                  cuda_backend::conv2d_backward_weight(r[1], gy, sx.get(), cg);
                                else
                                  r[1].zero_();
                              }
                              if (needs[2]) {
                                if (g.n > 0) {
                                  r[2] = gy.sum({0, 2, 3});
                                } else {
                                  r[2] = empty({g.o}, {.dtype = dt, .device = dev});
                                  r[2].zero_();
                                }
                              }
                              return r;
                            }
                            if (needs[0]) {
                              r[0] = empty({g.n, g.c, g.h, g.w}, {.dtype = dt});
                              if (g.n > 0) cpu::conv2d_backward_input(r[0], gy, sw.get(), g);
                            }
                            if (needs[1] || needs[2]) {
                              Tensor gw = needs[1] ? empty({g.o, g.c / g.groups, g.kh, g.kw}, {.dtype = dt}) : Tensor();
                              Tensor gb = needs[2] ? empty({g.o}, {.dtype = dt}) : Tensor();
                              if (g.n > 0) {
                                cpu::conv2d_backward_weight(gw, gb, gy, sx.get(), g);
                              } else {
                                if (gw.defined()) gw.zero_();
                                if (gb.defined()) gb.zero_();
                              }
                              r[1] = gw;
                              r[2] = gb;
                            }
                            return r;
                          });
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntPair stride, IntPair padding,
              IntPair dilation, int64_t groups) {
  if (input.defined() && amp::is_autocast_enabled(input.device().type)) {
    // Autocast (include/ember/amp/autocast.hpp): the floating operands in the autocast dtype.
    const Tensor ci = amp::autocast_low(input), cw = amp::autocast_low(weight), cb = amp::autocast_low(bias);
    if (ci.dtype() != input.dtype() || (weight.defined() && cw.dtype() != weight.dtype()) ||
        (bias.defined() && cb.dtype() != bias.dtype()))
      return conv2d(ci, cw, cb, stride, padding, dilation, groups);
  }
  check_conv_args(input, weight, bias, stride, padding, dilation, groups);
  if (input.dim() == 3) return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0);
  const DType dt = input.dtype();
  if ((dt == kFloat16 || dt == kBFloat16) && input.is_cpu()) {
    // On the CPU 16-bit floats compute in f32; the conversions carry the gradients back. (cuDNN
    // takes them as they are and accumulates in f32.)
    return conv2d_4d(input.to(kFloat32), weight.to(kFloat32), bias.defined() ? bias.to(kFloat32) : Tensor(), stride,
                     padding, dilation, groups)
        .to(dt);
  }
  return conv2d_4d(input, weight, bias, stride, padding, dilation, groups);
}

}  // namespace ember
