// nn::Conv2d: a 2-d convolution layer over NCHW input (torch.nn.Conv2d).
#pragma once

#include <string>

#include "ember/nn/module.hpp"
#include "ember/ops/conv.hpp"

namespace ember::nn {

struct Conv2dOptions {
  IntPair stride = 1;
  IntPair padding = 0;
  IntPair dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

/// Weight (out, in / groups, kH, kW) and bias (out), initialised as PyTorch:
/// kaiming_uniform(a = √5) for the weight, U(±1/√fan_in) for the bias (fan_in = in / groups ·
/// kH · kW). Usage: nn::Conv2d conv(1, 32, 3, {.padding = 1}).
class EMBER_API Conv2d : public UnaryModule {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, IntPair kernel_size, Conv2dOptions options = {});

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  /// "1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)" as PyTorch prints it.
  std::string extra_repr() const override;
  /// Re-draws weight and bias from PyTorch's default initialisation.
  void reset_parameters();

  int64_t in_channels, out_channels;
  IntPair kernel_size;
  Conv2dOptions options;
  Tensor weight;  // (out, in / groups, kH, kW)
  Tensor bias;    // (out) or undefined
};

}  // namespace ember::nn
