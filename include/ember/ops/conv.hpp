// Convolution, pooling and batch normalisation over NCHW tensors (torch.nn.functional's
// conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d, batch_norm), with autograd.
//
// On the CPU, f32 convolution runs on oneDNN's convolution primitives when Ember is built with
// oneDNN (as LibTorch does), f64 on im2col + GEMM; f16/bf16 are computed in f32. Pooling and
// batch norm are Ember's own loops, parallel over channels or planes.
#pragma once

#include <optional>
#include <utility>

#include "ember/core/tensor.hpp"

namespace ember {

/// A (height, width) pair of sizes; a single number means the same value for both, as
/// PyTorch's int-or-tuple arguments: conv2d(x, w, b, /*stride=*/2, /*padding=*/{1, 0}).
struct IntPair {
  int64_t h = 0;
  int64_t w = 0;
  constexpr IntPair() = default;
  constexpr IntPair(int64_t v) : h(v), w(v) {}  // NOLINT(google-explicit-constructor): int-or-pair
  constexpr IntPair(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  friend constexpr bool operator==(const IntPair&, const IntPair&) = default;
};

/// 2-d convolution (cross-correlation, as PyTorch): input (N, C, H, W) or unbatched (C, H, W),
/// weight (O, C / groups, kH, kW), bias (O) or undefined. Output (N, O, oH, oW) with
/// oH = (H + 2·padding.h − dilation.h·(kH − 1) − 1) / stride.h + 1. Input, weight and bias
/// must share one floating dtype and the CPU device.
EMBER_API Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), IntPair stride = 1,
                        IntPair padding = 0, IntPair dilation = 1, int64_t groups = 1);

/// 2-d max pooling over (N, C, H, W) or (C, H, W); stride defaults to kernel_size. Padding is
/// implicit −inf and must be at most half the (dilated) kernel. NaN propagates.
EMBER_API Tensor max_pool2d(const Tensor& input, IntPair kernel_size, std::optional<IntPair> stride = std::nullopt,
                            IntPair padding = 0, IntPair dilation = 1, bool ceil_mode = false);
/// max_pool2d that also returns, for every output element, the flat index h·W + w of its
/// maximum within the input plane (int64; the first maximum of the window on ties), as
/// torch.nn.functional.max_pool2d(..., return_indices=True).
EMBER_API std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, IntPair kernel_size,
                                                            std::optional<IntPair> stride = std::nullopt,
                                                            IntPair padding = 0, IntPair dilation = 1,
                                                            bool ceil_mode = false);
/// 2-d average pooling over (N, C, H, W) or (C, H, W); stride defaults to kernel_size. With
/// count_include_pad (PyTorch's default) zero padding counts in the divisor.
EMBER_API Tensor avg_pool2d(const Tensor& input, IntPair kernel_size, std::optional<IntPair> stride = std::nullopt,
                            IntPair padding = 0, bool ceil_mode = false, bool count_include_pad = true);
/// Average pooling to a fixed output size: output cell i covers input rows
/// [floor(i·H / oH), ceil((i + 1)·H / oH)), likewise for columns.
EMBER_API Tensor adaptive_avg_pool2d(const Tensor& input, IntPair output_size);

/// Batch normalisation over the channel dim 1 of (N, C), (N, C, L) or (N, C, H, W).
/// training: normalises with the batch mean and biased variance, and (when the running
/// tensors are defined) updates them in place under no-grad:
///   running_mean = (1 − momentum)·running_mean + momentum·mean,
///   running_var  = (1 − momentum)·running_var  + momentum·var·n / (n − 1).
/// Evaluation (training == false): normalises with running_mean and running_var, which must
/// then be defined. weight and bias (C) are optional. Gradients flow to input, weight and bias.
EMBER_API Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                            const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                            double momentum = 0.1, double eps = 1e-5);

}  // namespace ember
