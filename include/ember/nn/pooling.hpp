// Pooling layers over NCHW input: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (torch.nn's).
#pragma once

#include <optional>
#include <string>

#include "ember/nn/module.hpp"
#include "ember/ops/conv.hpp"

namespace ember::nn {

struct MaxPool2dOptions {
  std::optional<IntPair> stride;  // default: kernel_size
  IntPair padding = 0;
  IntPair dilation = 1;
  bool ceil_mode = false;
};

/// Window maximum; see ember::max_pool2d.
class EMBER_API MaxPool2d : public UnaryModule {
 public:
  explicit MaxPool2d(IntPair kernel_size, MaxPool2dOptions options = {});
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;
  IntPair kernel_size;
  MaxPool2dOptions options;
};

struct AvgPool2dOptions {
  std::optional<IntPair> stride;  // default: kernel_size
  IntPair padding = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;
};

/// Window mean; see ember::avg_pool2d.
class EMBER_API AvgPool2d : public UnaryModule {
 public:
  explicit AvgPool2d(IntPair kernel_size, AvgPool2dOptions options = {});
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;
  IntPair kernel_size;
  AvgPool2dOptions options;
};

/// Mean over adaptive windows to a fixed output size; see ember::adaptive_avg_pool2d.
class EMBER_API AdaptiveAvgPool2d : public UnaryModule {
 public:
  explicit AdaptiveAvgPool2d(IntPair output_size);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  IntPair output_size;
};

}  // namespace ember::nn
