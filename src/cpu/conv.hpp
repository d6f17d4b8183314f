// CPU kernels for convolution, pooling and batch norm (internal: called by src/ops/conv.cpp,
// pooling.cpp and batch_norm.cpp). Every tensor is contiguous NCHW and already validated;
// outputs are preallocated.
#pragma once

#include <cstdint>

#include "ember/core/tensor.hpp"

namespace ember::cpu {

// ------------------------------------------------------------------ convolution (src/cpu/conv.cpp)
/// Geometry of one 2-d convolution: input (n, c, h, w), weight (o, c / groups, kh, kw),
/// output (n, o, oh, ow).
struct ConvGeom {
  int64_t n, c, h, w;
  int64_t o, kh, kw;
  int64_t oh, ow;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t groups;
};

/// out = conv(x, w) + b (b may be undefined). f32 (oneDNN when available) or f64.
void conv2d_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g);
/// gx = gradient of the input given the output gradient gy.
void conv2d_backward_input(const Tensor& gx, const Tensor& gy, const Tensor& w, const ConvGeom& g);
/// gw (may be undefined) and gb (may be undefined) from gy and the saved input x.
void conv2d_backward_weight(const Tensor& gw, const Tensor& gb, const Tensor& gy, const Tensor& x, const ConvGeom& g);

// ------------------------------------------------------------------ pooling (src/cpu/pooling.cpp)
/// Geometry of 2-d pooling over `planes` = N·C planes of (h, w) into (oh, ow).
struct PoolGeom {
  int64_t planes, h, w, oh, ow;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};

/// out = window max, indices = flat position h·W + w of the first maximum (NaN wins).
void max_pool2d(const Tensor& out, const Tensor& indices, const Tensor& x, const PoolGeom& g);
/// gx (overwritten) = gy scattered to the argmax positions.
void max_pool2d_backward(const Tensor& gx, const Tensor& gy, const Tensor& indices, const PoolGeom& g);
/// out = window mean (PyTorch's divisor rules).
void avg_pool2d(const Tensor& out, const Tensor& x, const PoolGeom& g, bool count_include_pad);
/// gx (overwritten) = gy spread evenly over each window.
void avg_pool2d_backward(const Tensor& gx, const Tensor& gy, const PoolGeom& g, bool count_include_pad);
/// Adaptive average pooling (uses planes, h, w, oh, ow of g).
void adaptive_avg_pool2d(const Tensor& out, const Tensor& x, const PoolGeom& g);
void adaptive_avg_pool2d_backward(const Tensor& gx, const Tensor& gy, const PoolGeom& g);

// ------------------------------------------------------------------ batch norm (src/cpu/batch_norm.cpp)
/// A contiguous (n, c, s) tensor seen channel by channel (s = the spatial size, 1 for (N, C)).
struct ChannelGeom {
  int64_t n, c, s;
};

/// Per-channel mean and biased variance of x (two passes), in double.
void channel_moments(const Tensor& x, const ChannelGeom& g, double* mean, double* var);
/// Per channel: sum(gy) and sum(gy · (x − mean)).
void channel_grad_sums(const Tensor& gy, const Tensor& x, const ChannelGeom& g, const double* mean, double* sum_gy,
                       double* sum_gy_xmu);
/// out = x·a[c] + d[c] (+ z·b[c] when z is defined); out may alias x.
void channel_affine(const Tensor& out, const Tensor& x, const ChannelGeom& g, const double* a, const double* d,
                    const Tensor& z = Tensor(), const double* b = nullptr);

}  // namespace ember::cpu
