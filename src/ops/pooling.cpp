// max_pool2d, avg_pool2d, adaptive_avg_pool2d: validation, output sizes with PyTorch's
// rules (ceil_mode included), and autograd nodes over the CPU kernels in src/cpu/pooling.cpp
// or, for CUDA tensors, the CUDA backend's kernels (kernels/pool.cu) with the same rules.
#include "../cpu/conv.hpp"
#include "ember/autograd/node.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/ops/conv.hpp"

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

void check_pool_input(const char* op, const Tensor& x) {
  EMBER_CHECK(x.defined(), ValueError, op, ": expected a defined input");
  EMBER_CHECK(x.is_cpu() || x.is_cuda(), NotImplemented, op, ": expected a CPU or CUDA tensor, got one on ",
              x.device().str());
  EMBER_CHECK(is_floating(x.dtype()), DTypeError, op, ": expected a floating input, got ", dtype_name(x.dtype()));
  EMBER_CHECK(x.dim() == 3 || x.dim() == 4, ShapeError, op,
              ": expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got shape ", shape_str(x.shape()));
  EMBER_CHECK(x.size(-1) > 0 && x.size(-2) > 0, ShapeError, op, ": expected non-empty spatial dims, got shape ",
              shape_str(x.shape()));
}

// PyTorch's pooling_output_shape.
int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

cpu::PoolGeom pool_geom(const char* op, const Tensor& x, IntPair k, IntPair s, IntPair p, IntPair d, bool ceil_mode) {
  EMBER_CHECK(k.h > 0 && k.w > 0, ValueError, op, ": kernel_size must be positive, got ", pair_str(k));
  EMBER_CHECK(s.h > 0 && s.w > 0, ValueError, op, ": stride must be positive, got ", pair_str(s));
  EMBER_CHECK(d.h > 0 && d.w > 0, ValueError, op, ": dilation must be positive, got ", pair_str(d));
  EMBER_CHECK(p.h >= 0 && p.w >= 0, ValueError, op, ": padding must be non-negative, got ", pair_str(p));
  EMBER_CHECK(p.h <= k.h / 2 && p.w <= k.w / 2, ValueError, op, ": padding ", pair_str(p),
              " must be at most half of the kernel size ", pair_str(k));
  cpu::PoolGeom g{};
  g.h = x.size(-2), g.w = x.size(-1);
  g.planes = x.numel() / (g.h * g.w);
  g.kh = k.h, g.kw = k.w, g.sh = s.h, g.sw = s.w, g.ph = p.h, g.pw = p.w, g.dh = d.h, g.dw = d.w;
  g.oh = pool_out(g.h, k.h, s.h, p.h, d.h, ceil_mode);
  g.ow = pool_out(g.w, k.w, s.w, p.w, d.w, ceil_mode);
  EMBER_CHECK(g.oh > 0 && g.ow > 0, ShapeError, op, ": input of shape ", shape_str(x.shape()),
              " is too small for kernel_size ", pair_str(k), ", dilation ", pair_str(d), " and padding ", pair_str(p),
              " (output size ", pair_str({g.oh, g.ow}), ")");
  return g;
}

cuda_backend::PoolGeom cuda_geom(const cpu::PoolGeom& g) {
  return {g.planes, g.h, g.w, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
}

Shape out_shape(const Tensor& x, const cpu::PoolGeom& g) {
  Shape s = x.shape();
  s[s.size() - 2] = g.oh;
  s.back() = g.ow;
  return s;
}

}  // namespace

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, IntPair kernel_size,
                                                  std::optional<IntPair> stride, IntPair padding, IntPair dilation,
                                                  bool ceil_mode) {
  check_pool_input("max_pool2d", input);
  const cpu::PoolGeom g =
      pool_geom("max_pool2d", input, kernel_size, stride.value_or(kernel_size), padding, dilation, ceil_mode);
  const Shape os = out_shape(input, g);
  const Device dev = input.device();
  Tensor out = empty(os, {.dtype = input.dtype(), .device = dev});
  Tensor idx = empty(os, {.dtype = kInt64, .device = dev});
  {
    NoGradGuard ng;
    if (g.planes > 0) {
      if (dev.is_cuda())
        cuda_backend::max_pool2d(out, idx, input.contiguous(), cuda_geom(g));
      else
        cpu::max_pool2d(out, idx, input.contiguous(), g);
    }
  }
  const Shape in_shape = input.shape();
  const DType dt = input.dtype();
  out = autograd::record("MaxPool2DWithIndicesBackward", {input}, out,
                         [idx, g, in_shape, dt, dev](const Grads& grads, const Needs& needs) {
                           Grads r(1);
                           if (!needs[0]) return r;
                           r[0] = empty(in_shape, {.dtype = dt, .device = dev});
                           if (g.planes == 0) return r;
                           if (dev.is_cuda())
                             cuda_backend::max_pool2d_backward(r[0], grads[0].contiguous(), idx, cuda_geom(g));
                           else
                             cpu::max_pool2d_backward(r[0], grads[0].contiguous(), idx, g);
                           return r;
                         });
  return {out, idx};
}

Tensor max_pool2d(const Tensor& input, IntPair kernel_size, std::optional<IntPair> stride, IntPair padding,
                  IntPair dilation, bool ceil_mode) {
  return max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode).first;
}

Tensor avg_pool2d(const Tensor& input, IntPair kernel_size, std::optional<IntPair> stride, IntPair padding,
                  bool ceil_mode, bool count_include_pad) {
  check_pool_input("avg_pool2d", input);
  const cpu::PoolGeom g =
      pool_geom("avg_pool2d", input, kernel_size, stride.value_or(kernel_size), padding, 1, ceil_mode);
  const Device dev = input.device();
  Tensor out = empty(out_shape(input, g), {.dtype = input.dtype(), .device = dev});
  {
    NoGradGuard ng;
    if (g.planes > 0) {
      if (dev.is_cuda())
        cuda_backend::avg_pool2d(out, input.contiguous(), cuda_geom(g), count_include_pad);
      else
        cpu::avg_pool2d(out, input.contiguous(), g, count_include_pad);
    }
  }
  const Shape in_shape = input.shape();
  const DType dt = input.dtype();
  return autograd::record("AvgPool2DBackward", {input}, out,
                          [g, in_shape, dt, dev, count_include_pad](const Grads& grads, const Needs& needs) {
                            Grads r(1);
                            if (!needs[0]) return r;
                            r[0] = empty(in_shape, {.dtype = dt, .device = dev});
                            if (g.planes == 0) return r;
                            if (dev.is_cuda())
                              cuda_backend::avg_pool2d_backward(r[0], grads[0].contiguous(), cuda_geom(g),
                                                                count_include_pad);
                            else
                              cpu::avg_pool2d_backward(r[0], grads[0].contiguous(), g, count_include_pad);
                            return r;
                          });
}

Tensor adaptive_avg_pool2d(const Tensor& input, IntPair output_size) {
  check_pool_input("adaptive_avg_pool2d", input);
  EMBER_CHECK(output_size.h > 0 && output_size.w > 0, ValueError,
              "adaptive_avg_pool2d: output_size must be positive, got ", pair_str(output_size));
  cpu::PoolGeom g{};
  g.h = input.size(-2), g.w = input.size(-1);
  g.planes = input.numel() / (g.h * g.w);
  g.oh = output_size.h, g.ow = output_size.w;
  const Device dev = input.device();
  Tensor out = empty(out_shape(input, g), {.dtype = input.dtype(), .device = dev});
  {
    NoGradGuard ng;
    if (g.planes > 0) {
      if (dev.is_cuda())
        cuda_backend::adaptive_avg_pool2d(out, input.contiguous(), cuda_geom(g));
      else
        cpu::adaptive_avg_pool2d(out, input.contiguous(), g);
    }
  }
  const Shape in_shape = input.shape();
  const DType dt = input.dtype();
  return autograd::record("AdaptiveAvgPool2DBackward", {input}, out,
                          [g, in_shape, dt, dev](const Grads& grads, const Needs& needs) {
                            Grads r(1);
                            if (!needs[0]) return r;
                            r[0] = empty(in_shape, {.dtype = dt, .device = dev});
                            if (g.planes == 0) return r;
                            if (dev.is_cuda())
                              cuda_backend::adaptive_avg_pool2d_backward(r[0], grads[0].contiguous(), cuda_geom(g));
                            else
                              cpu::adaptive_avg_pool2d_backward(r[0], grads[0].contiguous(), g);
                            return r;
                          });
}

}  // namespace ember
